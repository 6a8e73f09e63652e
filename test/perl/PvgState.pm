# PvgState: the state privacy_guard keeps, made and read back by the tests
# of updates (021_update.pl) and pg_upgrade (020_pg_upgrade.pl): a
# description of the extension's member objects from the catalogs, a
# database with every kind of state, and what a user sees of it.
package PvgState;
use strict;
use warnings;
use Exporter 'import';
our @EXPORT = qw(catalog_lines differences make_state state_of);

# Every member object of the extension, one line per fact, without OIDs
# (names qualified: the search path is pg_catalog only).
our $catalog = q{
SET search_path = pg_catalog;
/* an ACL as its sorted items grantee=privilege/grantor (* grantable), PUBLIC as - */
CREATE FUNCTION pg_temp.acl(aclitem[]) RETURNS text LANGUAGE sql AS $$
	SELECT coalesce(string_agg(e, ',' ORDER BY e), '')
	  FROM (SELECT x.grantee::regrole || '=' || x.privilege_type || '/' || x.grantor::regrole
				   || CASE WHEN x.is_grantable THEN '*' ELSE '' END AS e
			  FROM aclexplode($1) x) y
$$;
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'privacy_guard'),
mem AS (
	SELECT d.classid, d.objid, (pg_identify_object(d.classid, d.objid, 0)).*
	  FROM pg_depend d, ext
	 WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'),
lines AS (
	SELECT 'member ' || m.type || ' ' || m.identity AS l FROM mem m
	UNION ALL
	/* functions, procedures, aggregates: the whole definition */
	SELECT 'function ' || m.identity || E'\n' ||
		   CASE WHEN p.prokind = 'a'
				THEN format('aggregate %s(%s) sfunc %s stype %s final %s init %s', p.proname,
							pg_get_function_arguments(p.oid), a.aggtransfn::regprocedure, a.aggtranstype::regtype,
							a.aggfinalfn, a.agginitval)
				ELSE pg_get_functiondef(p.oid) END
	  FROM mem m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
	  LEFT JOIN pg_aggregate a ON a.aggfnoid = p.oid
	UNION ALL
	SELECT 'function ' || m.identity || ' owner ' || p.proowner::regrole || ' acl ' ||
		   pg_temp.acl(coalesce(p.proacl, acldefault('f', p.proowner)))
	  FROM mem m JOIN pg_proc p ON m.classid = 'pg_proc'::regclass AND p.oid = m.objid
	UNION ALL
	/* relations: kind, options, row-level security, privileges */
	SELECT format('relation %s kind %s persistence %s options %s rls %s force %s owner %s acl %s',
				  m.identity, c.relkind, c.relpersistence, c.reloptions, c.relrowsecurity, c.relforcerowsecurity,
				  c.relowner::regrole,
				  pg_temp.acl(coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char",
																			  c.relowner))))
	  FROM mem m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid
	UNION ALL
	/* columns in their order (dropped ones left out), of relations and composite types */
	SELECT format('column %s #%s %s %s notnull %s default %s identity %s generated %s collation %s acl %s',
				  c.oid::regclass, row_number() OVER (PARTITION BY c.oid ORDER BY at.attnum), at.attname,
				  format_type(at.atttypid, at.atttypmod), at.attnotnull, pg_get_expr(ad.adbin, ad.adrelid),
				  at.attidentity, at.attgenerated, at.attcollation::regcollation, pg_temp.acl(at.attacl))
	  FROM mem m
	  JOIN pg_class c ON (m.classid = 'pg_class'::regclass AND c.oid = m.objid)
						 OR (m.classid = 'pg_type'::regclass
							 AND c.oid = (SELECT t.typrelid FROM pg_type t WHERE t.oid = m.objid))
	  JOIN pg_attribute at ON at.attrelid = c.oid AND at.attnum > 0 AND NOT at.attisdropped
	  LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = at.attnum
	UNION ALL
	SELECT format('constraint %s on %s: %s deferrable %s validated %s', co.conname,
				  coalesce(co.conrelid::regclass::text, co.contypid::regtype::text), pg_get_constraintdef(co.oid),
				  co.condeferrable, co.convalidated)
	  FROM mem m JOIN pg_constraint co
		ON (m.classid = 'pg_class'::regclass AND co.conrelid = m.objid)
		OR (m.classid = 'pg_type'::regclass AND co.contypid = m.objid)
	UNION ALL
	SELECT 'index ' || pg_get_indexdef(i.indexrelid)
	  FROM mem m JOIN pg_index i ON m.classid = 'pg_class'::regclass AND i.indrelid = m.objid
	UNION ALL
	SELECT 'trigger ' || pg_get_triggerdef(t.oid) || ' enabled ' || t.tgenabled::text
	  FROM mem m JOIN pg_trigger t ON m.classid = 'pg_class'::regclass AND t.tgrelid = m.objid
	 WHERE NOT t.tgisinternal	/* foreign keys' triggers, named by OID: the constraints say it */
	UNION ALL
	SELECT format('policy %s on %s cmd %s permissive %s roles %s using %s check %s', po.polname,
				  po.polrelid::regclass, po.polcmd, po.polpermissive,
				  (SELECT string_agg(r::regrole::text, ',' ORDER BY r::regrole::text) FROM unnest(po.polroles) r),
				  pg_get_expr(po.polqual, po.polrelid), pg_get_expr(po.polwithcheck, po.polrelid))
	  FROM mem m JOIN pg_policy po ON m.classid = 'pg_class'::regclass AND po.polrelid = m.objid
	UNION ALL
	SELECT 'rule ' || pg_get_ruledef(r.oid)
	  FROM mem m JOIN pg_rewrite r ON m.classid = 'pg_class'::regclass AND r.ev_class = m.objid
	 WHERE r.rulename <> '_RETURN'
	UNION ALL
	SELECT 'view ' || m.identity || E'\n' || pg_get_viewdef(m.objid)
	  FROM mem m JOIN pg_class c ON m.classid = 'pg_class'::regclass AND c.oid = m.objid AND c.relkind IN ('v', 'm')
	UNION ALL
	SELECT format('sequence %s type %s start %s increment %s max %s min %s cache %s cycle %s owned by %s',
				  m.identity, s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmax, s.seqmin, s.seqcache,
				  s.seqcycle,
				  (SELECT d.refobjid::regclass || '.' || d.refobjsubid FROM pg_depend d
					WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid AND d.deptype IN ('a', 'i')
					  AND d.refclassid = 'pg_class'::regclass))
	  FROM mem m JOIN pg_sequence s ON m.classid = 'pg_class'::regclass AND s.seqrelid = m.objid
	UNION ALL
	SELECT format('type %s kind %s category %s in %s out %s recv %s send %s analyze %s len %s byval %s align %s storage %s base %s typmod %s notnull %s default %s owner %s acl %s',
				  m.identity, t.typtype, t.typcategory, t.typinput::regprocedure, t.typoutput::regprocedure,
				  t.typreceive, t.typsend, t.typanalyze, t.typlen, t.typbyval, t.typalign, t.typstorage,
				  t.typbasetype::regtype, t.typtypmod, t.typnotnull, t.typdefault, t.typowner::regrole, pg_temp.acl(t.typacl))
	  FROM mem m JOIN pg_type t ON m.classid = 'pg_type'::regclass AND t.oid = m.objid
	UNION ALL
	SELECT 'enum ' || e.enumtypid::regtype || ' ' || e.enumlabel || ' #' ||
		   row_number() OVER (PARTITION BY e.enumtypid ORDER BY e.enumsortorder)
	  FROM mem m JOIN pg_enum e ON m.classid = 'pg_type'::regclass AND e.enumtypid = m.objid
	UNION ALL
	SELECT format('operator %s code %s commutator %s negator %s restrict %s join %s merges %s hashes %s',
				  m.identity, o.oprcode::regprocedure, o.oprcom::regoperator, o.oprnegate::regoperator,
				  o.oprrest, o.oprjoin, o.oprcanmerge, o.oprcanhash)
	  FROM mem m JOIN pg_operator o ON m.classid = 'pg_operator'::regclass AND o.oid = m.objid
	UNION ALL
	SELECT format('cast %s function %s context %s method %s', m.identity,
				  nullif(k.castfunc, 0)::regprocedure, k.castcontext, k.castmethod)
	  FROM mem m JOIN pg_cast k ON m.classid = 'pg_cast'::regclass AND k.oid = m.objid
	UNION ALL
	SELECT format('opclass %s default %s type %s family %s', m.identity, oc.opcdefault, oc.opcintype::regtype,
				  oc.opcfamily)
	  FROM mem m JOIN pg_opclass oc ON m.classid = 'pg_opclass'::regclass AND oc.oid = m.objid
	UNION ALL
	SELECT format('opfamily %s op %s strategy %s %s', m.identity, ao.amopopr::regoperator, ao.amopstrategy, ao.amoppurpose)
	  FROM mem m JOIN pg_amop ao ON m.classid = 'pg_opfamily'::regclass AND ao.amopfamily = m.objid
	UNION ALL
	SELECT format('opfamily %s proc %s number %s', m.identity, ap.amproc::regprocedure, ap.amprocnum)
	  FROM mem m JOIN pg_amproc ap ON m.classid = 'pg_opfamily'::regclass AND ap.amprocfamily = m.objid
	UNION ALL
	SELECT format('event trigger %s on %s function %s enabled %s tags %s owner %s', e.evtname, e.evtevent,
				  e.evtfoid::regprocedure, e.evtenabled, e.evttags, e.evtowner::regrole)
	  FROM mem m JOIN pg_event_trigger e ON m.classid = 'pg_event_trigger'::regclass AND e.oid = m.objid
	UNION ALL
	SELECT format('schema %s owner %s acl %s', n.nspname, n.nspowner::regrole,
				  pg_temp.acl(coalesce(n.nspacl, acldefault('n', n.nspowner))))
	  FROM mem m JOIN pg_namespace n ON m.classid = 'pg_namespace'::regclass AND n.oid = m.objid
	UNION ALL
	/* comments on members and their columns and parts (constraints, triggers, policies, indexes) */
	SELECT format('comment on %s: %s', (pg_identify_object(ds.classoid, ds.objoid, ds.objsubid)).identity,
				  ds.description)
	  FROM pg_description ds
	 WHERE EXISTS (SELECT 1 FROM mem m WHERE m.classid = ds.classoid AND m.objid = ds.objoid)
		OR EXISTS (SELECT 1 FROM mem m JOIN pg_constraint co ON co.conrelid = m.objid OR co.contypid = m.objid
					WHERE ds.classoid = 'pg_constraint'::regclass AND ds.objoid = co.oid)
		OR EXISTS (SELECT 1 FROM mem m JOIN pg_trigger t ON t.tgrelid = m.objid
					WHERE ds.classoid = 'pg_trigger'::regclass AND ds.objoid = t.oid)
		OR EXISTS (SELECT 1 FROM mem m JOIN pg_policy po ON po.polrelid = m.objid
					WHERE ds.classoid = 'pg_policy'::regclass AND ds.objoid = po.oid)
		OR EXISTS (SELECT 1 FROM mem m JOIN pg_index i ON i.indrelid = m.objid
					WHERE ds.classoid = 'pg_class'::regclass AND ds.objoid = i.indexrelid)
	UNION ALL
	/* the privileges pg_dump treats as the extension's own */
	SELECT format('initial privileges %s: %s', (pg_identify_object(ip.classoid, ip.objoid, ip.objsubid)).identity,
				  pg_temp.acl(ip.initprivs))
	  FROM pg_init_privs ip
	 WHERE ip.privtype = 'e'
	   /* a row equal to the object's default privileges says nothing (pg_dump reads
		  a missing row so), and pg_upgrade does not carry it */
	   AND pg_temp.acl(ip.initprivs) IS DISTINCT FROM
		   CASE WHEN ip.objsubid <> 0 THEN ''
				WHEN ip.classoid = 'pg_proc'::regclass
				THEN pg_temp.acl(acldefault('f', (SELECT p.proowner FROM pg_proc p WHERE p.oid = ip.objoid)))
				WHEN ip.classoid = 'pg_class'::regclass
				THEN (SELECT pg_temp.acl(acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))
						FROM pg_class c WHERE c.oid = ip.objoid)
				WHEN ip.classoid = 'pg_namespace'::regclass
				THEN pg_temp.acl(acldefault('n', (SELECT n.nspowner FROM pg_namespace n WHERE n.oid = ip.objoid)))
				WHEN ip.classoid = 'pg_type'::regclass
				THEN pg_temp.acl(acldefault('T', (SELECT t.typowner FROM pg_type t WHERE t.oid = ip.objoid)))
		   END
	UNION ALL
	/* what pg_dump dumps of the configuration tables */
	SELECT format('configuration %s where %s', u.tbl::regclass, u.cond)
	  FROM pg_extension e, ext, unnest(e.extconfig, e.extcondition) u(tbl, cond)
	 WHERE e.oid = ext.oid
	UNION ALL
	SELECT format('extension schema %s relocatable %s version %s; the schema''s owner %s acl %s',
				  e.extnamespace::regnamespace, e.extrelocatable, e.extversion, n.nspowner::regrole,
				  pg_temp.acl(coalesce(n.nspacl, acldefault('n', n.nspowner))))
	  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace, ext WHERE e.oid = ext.oid)
SELECT replace(l, E'\\n', '\\n') FROM lines ORDER BY 1;
};

# the description, one line per fact (newlines inside written as \\n)
sub catalog_lines
{
	my ($node, $db) = @_;
	return [ split /\n/, $node->safe_psql($db, $catalog) ];
}
# the lines only in one of two lists, marked - and +
sub differences
{
	my ($a, $b) = @_;
	my %count;
	$count{$_}++ for @$a;
	$count{$_}-- for @$b;
	my @d;
	for my $l (sort keys %count)
	{
		push @d, ("- $l") x $count{$l} if $count{$l} > 0;
		push @d, ("+ $l") x -$count{$l} if $count{$l} < 0;
	}
	return @d;
}

# Every kind of state, in $db where the extension exists (roles app and
# auditor exist): purposes of each legal basis and a hierarchy, authorisations,
# an administrator, consents with history (grant, withdraw, objection, grant
# again, evidence), protected tables (one with retention, one partitioned, one
# anonymised with a custom function, hash and mask, one under a legal hold),
# tagged values, forget requests done (9), restricted by the hold (8),
# blocked by a foreign key (6) and pending (5), receipts, an anonymizer whose
# function was dropped since (pets), and a read in the access log.
sub make_state
{
	my ($node, $db) = @_;
	$node->safe_psql($db, q{
	SELECT privacy_guard.define_purpose('billing', 'contract');
	SELECT privacy_guard.define_purpose('marketing', 'consent');
	SELECT privacy_guard.define_purpose('marketing.email', 'consent', 'newsletters');
	SELECT privacy_guard.define_purpose('tax', 'legal_obligation');
	SELECT privacy_guard.define_purpose('analytics', 'legitimate_interests');
	SELECT privacy_guard.allow_purpose('app', p) FROM unnest(ARRAY['billing', 'marketing', 'tax', 'analytics']) p;
	SELECT privacy_guard.grant_admin('auditor');

	CREATE FUNCTION public.initials(text) RETURNS text LANGUAGE sql IMMUTABLE
		AS $$ SELECT left($1, 1) || '.' $$;
	GRANT EXECUTE ON FUNCTION public.initials(text) TO PUBLIC;
	CREATE FUNCTION public.gone(text) RETURNS text LANGUAGE sql IMMUTABLE AS $$ SELECT 'x' $$;

	CREATE TABLE customers (id bigint PRIMARY KEY, email text, created timestamptz NOT NULL DEFAULT now());
	INSERT INTO customers SELECT g, 'c' || g || '@example.org', now() - g * interval '1 day'
	  FROM generate_series(1, 9) g;
	SELECT privacy_guard.protect('customers', 'id', ARRAY['billing', 'marketing', 'analytics'], '1 year', 'created');

	CREATE TABLE orders (id bigint, customer_id bigint, amount numeric) PARTITION BY RANGE (id);
	CREATE TABLE orders_1 PARTITION OF orders FOR VALUES FROM (0) TO (100);
	CREATE TABLE orders_2 PARTITION OF orders FOR VALUES FROM (100) TO (200);
	INSERT INTO orders SELECT g * 20, g, g FROM generate_series(1, 9) g;
	SELECT privacy_guard.protect('orders', 'customer_id', ARRAY['marketing']);

	CREATE TABLE contacts (pk int PRIMARY KEY, subject text, nick text, email text, phone text);
	INSERT INTO contacts VALUES (1, '1', 'Anna', 'anna@example.org', '0123456789'),
		(2, '5', 'Bert', 'bert@example.org', '0987654321'), (3, '6', 'Cleo', 'cleo@example.org', '5555');
	SELECT privacy_guard.protect('contacts', 'subject', ARRAY['billing'], on_forget => 'anonymize');
	SELECT privacy_guard.set_anonymizer('contacts', 'nick', 'public.initials');
	SELECT privacy_guard.set_anonymizer('contacts', 'email', 'hash');
	SELECT privacy_guard.set_anonymizer('contacts', 'phone', 'mask');

	CREATE TABLE pets (pk int PRIMARY KEY, owner text, name text);
	INSERT INTO pets VALUES (1, '7', 'Rex');
	SELECT privacy_guard.protect('pets', 'owner', ARRAY['billing'], on_forget => 'anonymize');
	SELECT privacy_guard.set_anonymizer('pets', 'name', 'public.gone');

	CREATE TABLE invoices (id int PRIMARY KEY, customer_id bigint, amount numeric, issued timestamptz NOT NULL);
	INSERT INTO invoices VALUES (1, 8, 10, now() - interval '1 day'), (2, 8, 20, now() - interval '60 days'),
		(3, 2, 30, now() - interval '2 days');
	SELECT privacy_guard.protect('invoices', 'customer_id', ARRAY['billing'], interval '30 days', 'issued');
	SELECT privacy_guard.set_legal_hold('invoices', interval '10 years', 'tax');

	CREATE TABLE notes (id int PRIMARY KEY, body privacy_guard.tagged_text);
	INSERT INTO notes VALUES (1, privacy_guard.tag('note one'::text, ARRAY['billing'], '1')),
		(2, privacy_guard.tag('note two'::text, ARRAY['marketing'], '3', '2099-01-01 00:00:00+00'));
	GRANT SELECT ON customers, orders, orders_1, orders_2, contacts, pets, invoices, notes TO app;

	SELECT privacy_guard.grant_consent(g::text, 'marketing', evidence => '{"form": "signup"}')
	  FROM generate_series(1, 6) g;
	SELECT privacy_guard.withdraw_consent('2', 'marketing');
	SELECT privacy_guard.object_to('3', 'analytics');
	SELECT privacy_guard.grant_consent('2', 'marketing.email');
	SELECT privacy_guard.withdraw_consent('4', 'marketing');
	SELECT privacy_guard.grant_consent('4', 'marketing');

	/* a reference the erasure may not break */
	CREATE TABLE refs (customer_id bigint REFERENCES customers (id));
	INSERT INTO refs VALUES (6);

	/* requests: done (9), restricted by the hold (8), blocked by the reference (6) */
	SELECT privacy_guard.forget('9', 'asked by mail');
	SELECT privacy_guard.forget('8');
	SELECT privacy_guard.forget('6');
	SELECT privacy_guard.run_maintenance();
	SELECT privacy_guard.run_maintenance();
	/* ... and pending (5: its contacts row is anonymised later) */
	SELECT privacy_guard.forget('5');
	/* an anonymizer whose function is gone */
	DROP FUNCTION public.gone(text);
});
	$node->safe_psql($db, q{
	SET privacy_guard.audit = on;
	SET ROLE app;
	SET privacy_guard.purpose = 'billing';
	SELECT count(*) FROM customers;
	RESET ROLE;
	RESET privacy_guard.audit;
	SELECT privacy_guard._flush_access_log();
});
	return;
}

# What a user sees: the rows per purpose as app, the receipts, the tags; and
# every table of the extension, row by row (regprocedure and text print alike
# with the search path at pg_catalog only).
our $visible = q{
	CREATE FUNCTION pg_temp.seen(expr text, tbl text) RETURNS text LANGUAGE plpgsql AS $f$
	DECLARE r text;
	BEGIN
		EXECUTE format('SELECT string_agg(e, '','' ORDER BY e) FROM (SELECT %s AS e FROM %s) s', expr, tbl) INTO r;
		RETURN coalesce(r, '');
	EXCEPTION WHEN OTHERS THEN
		RETURN 'refused ' || SQLSTATE;
	END $f$;
	SET ROLE app;
} . join('', map { qq{
	SET privacy_guard.purpose = '$_';
	SELECT '$_', pg_temp.seen('id::text', 'public.customers'), pg_temp.seen('id::text', 'public.orders'),
		   pg_temp.seen('pk::text', 'public.contacts'), pg_temp.seen('id::text', 'public.invoices'),
		   pg_temp.seen('id || '':'' || coalesce(privacy_guard.reveal(body), ''-'')', 'public.notes');
} } ('analytics', 'billing', 'marketing', 'marketing.email', 'tax', '')) . q{
	RESET ROLE;
	SELECT s, privacy_guard.erasure_status(s) FROM generate_series(1, 10) g, LATERAL CAST(g AS text) s ORDER BY g;
	SELECT id, body::text, privacy_guard.tag_purposes(body), privacy_guard.tag_retain_until(body)
	  FROM public.notes ORDER BY id;
};
# the extension's tables with their columns in order: "table|col,col"
our $tables_sql = q{
	SELECT c.oid::regclass, string_agg(quote_ident(a.attname), ',' ORDER BY a.attnum)
	  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
	 WHERE c.relnamespace = 'privacy_guard'::regnamespace AND c.relkind IN ('r', 'p')
	 GROUP BY c.oid ORDER BY c.oid::regclass::text
};

# The state of $db: every table of the extension row by row (long rows as
# their md5), then what a user sees.  Returns the text and the tables with
# their columns; given the tables and columns of an earlier call, reads
# those only (a later version may add tables and columns).
sub state_of
{
	my ($node, $db, $tables) = @_;
	$tables //= [ split /\n/, $node->safe_psql($db, "SET search_path = pg_catalog;\n$tables_sql") ];
	my $q = join("\nUNION ALL\n", map {
		my ($t, $cols) = split /\|/;
		"SELECT '$t: ' || coalesce(string_agg(CASE WHEN length(r::text) > 300 THEN 'md5 ' || md5(r::text) "
		  . "ELSE r::text END, ' | ' ORDER BY r::text), '') FROM (SELECT $cols FROM $t) r"
	} @$tables);
	my $text = $node->safe_psql($db, "SET search_path = pg_catalog; SET TimeZone = 'UTC';\n$q;") . "\n"
	  . $node->safe_psql($db, "SET TimeZone = 'UTC';\n$visible");
	return wantarray ? ($text, $tables) : $text;
}
1;
