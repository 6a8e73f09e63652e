# pg_dump -Fc by a superuser and pg_restore into a new database bring back
# every tagged value with its tag exactly (purpose ids, a dropped purpose's
# id, subject, retain-until, values awaiting a default tag), whatever order
# the restore loads the tables in; rule 3.4 and default tags work as before.
# A dump by a role the rules bind fails instead of writing withheld values.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('tagged_dump');
$node->init(extra => ['--no-locale', '--encoding=UTF8']);
$node->start;

$node->safe_psql('postgres', q{
	CREATE ROLE app LOGIN;
	CREATE DATABASE src;
	CREATE DATABASE dst;
	CREATE DATABASE dst_reordered;
});
$node->safe_psql('src', q{
	CREATE EXTENSION privacy_guard;
	SELECT privacy_guard.define_purpose('scratch', 'contract');
	SELECT privacy_guard.define_purpose('billing', 'contract');
	SELECT privacy_guard.define_purpose('marketing', 'consent');
	SELECT privacy_guard.define_purpose('marketing.email', 'consent');
	SELECT privacy_guard.define_purpose('doomed', 'contract');
	SELECT privacy_guard.drop_purpose('scratch');
	SELECT privacy_guard.allow_purpose('app', 'billing');
	SELECT privacy_guard.allow_purpose('app', 'marketing');
	CREATE DOMAIN doc AS privacy_guard.tagged_jsonb;
	CREATE TABLE customers (id bigint, email privacy_guard.tagged_text, born privacy_guard.tagged_date,
							score privacy_guard.tagged_numeric, prefs doc, created timestamptz);
	SELECT privacy_guard.protect('customers', 'id', ARRAY['billing', 'marketing'], '2 years', 'created');
	SET privacy_guard.purpose = 'billing';
	INSERT INTO customers
		SELECT g, 'person-' || g || '@example.org', date '1970-01-01' + g * 100, g * 1.25,
			   jsonb_build_object('n', g, 's', 'ü"\'), timestamptz '2030-01-01 00:00:00+00' + g * interval '1 hour'
		  FROM generate_series(1, 20) g;
	CREATE TABLE notes (id int, body privacy_guard.tagged_text, amount privacy_guard.tagged_numeric);
	INSERT INTO notes VALUES
		(1, privacy_guard.tag('ZEBRA-1 "q" \ tab	end'::text, ARRAY['marketing.email', 'doomed'], '3',
							  '2031-02-03 04:05:06.789+00'), privacy_guard.tag(-1e-20, ARRAY['billing'])),
		(2, privacy_guard.tag(repeat('long-', 5000), ARRAY['billing'], '4'), NULL),
		(3, 'plain, awaiting a default tag', 3),
		(4, 'tagged:looks like a literal'::text, NULL),
		(5, NULL, privacy_guard.tag('NaN'::numeric, ARRAY['billing'], NULL, '-infinity'));
	SELECT privacy_guard.drop_purpose('doomed');
	SELECT privacy_guard.grant_consent(g::text, 'marketing') FROM generate_series(1, 10) g;
	SELECT privacy_guard.forget('5');
	GRANT SELECT ON customers, notes TO app;
});

# every value's full text form (value and tag), and the registries
my $all = q{
	SELECT string_agg(format('%s|%s|%s|%s|%s', id, email, born, score, prefs), E'\n' ORDER BY id) FROM customers
	UNION ALL
	SELECT string_agg(format('%s|%s|%s', id, body, amount), E'\n' ORDER BY id) FROM notes
	UNION ALL
	SELECT string_agg(format('%s|%s|%s|%s', id, name, parent, legal_basis), E'\n' ORDER BY id)
	  FROM privacy_guard.purpose
	UNION ALL
	SELECT string_agg(format('%s|%s|%s', subject, purpose, status), E'\n' ORDER BY subject, purpose)
	  FROM privacy_guard.consent_state
	UNION ALL
	SELECT string_agg(format('%s|%s|%s', id, subject_digest, state), E'\n' ORDER BY id)
	  FROM privacy_guard.erasure_request;
};
my $seen = q{
	SET ROLE app;
	SET privacy_guard.purpose = 'marketing';
	SELECT (SELECT string_agg(id || '=' || coalesce(privacy_guard.reveal(email), '-'), ',' ORDER BY id) FROM customers)
		   || ' / ' ||
		   (SELECT string_agg(id || '=' || coalesce(left(privacy_guard.reveal(body), 7), '-'), ',' ORDER BY id) FROM notes);
};
my $before = $node->safe_psql('src', $all);
my $seen_before = $node->safe_psql('src', $seen);
like($before, qr/"#\d+": \d+/, 'source: a dropped purpose is written by its id');
is($seen_before, join(',', map { "$_=person-$_\@example.org" } 1 .. 4, 6 .. 10)
	. ' / 1=-,2=-,3=plain, ,4=tagged:,5=-',
	'source: rule 3.4 under marketing (consent, forget) for protected and unprotected tables');

my $dump = $node->basedir . '/src.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $node->connstr('src') ],
	'pg_dump -Fc by a superuser');

my ($stdout, $stderr);
my $rc = IPC::Run::run([ 'pg_restore', '-d', $node->connstr('dst'), $dump ],
	'>', \$stdout, '2>', \$stderr);
ok($rc, 'pg_restore reports no error') or diag($stderr);
is($node->safe_psql('dst', $all), $before, 'restored: every value, tag and registry row is identical');
is($node->safe_psql('dst', $seen), $seen_before, 'restored: rule 3.4 gives the same answers');

# the same restore with user tables loaded before privacy_guard's registries
my $list = $node->basedir . '/list';
IPC::Run::run([ 'pg_restore', '-l', $dump ], '>', $list) or die 'pg_restore -l failed';
open(my $fh, '<', $list) or die;
my @lines = <$fh>;
close $fh;
my @user_data = grep { /TABLE DATA public / } @lines;
my @rest = grep { !/TABLE DATA public / } @lines;
my ($first_data) = grep { $rest[$_] =~ /TABLE DATA/ } 0 .. $#rest;
ok(defined $first_data && @user_data == 2, 'the dump has the user tables\' data and the registries\' data');
splice(@rest, $first_data, 0, @user_data);
open($fh, '>', "$list.reordered") or die;
print $fh @rest;
close $fh;
$rc = IPC::Run::run([ 'pg_restore', '-L', "$list.reordered", '-d', $node->connstr('dst_reordered'), $dump ],
	'>', \$stdout, '2>', \$stderr);
ok($rc, 'pg_restore with user data first reports no error') or diag($stderr);
is($node->safe_psql('dst_reordered', $all), $before, 'restored in the other order: identical');
is($node->safe_psql('dst_reordered', $seen), $seen_before, 'restored in the other order: rule 3.4 the same');

# the default-tag trigger came back with the table
$node->safe_psql('dst', q{
	SET privacy_guard.purpose = 'billing';
	INSERT INTO customers (id, email, created) VALUES (21, 'new@example.org', '2030-01-01 00:00:00+00');
});
is($node->safe_psql('dst', q{
	SELECT privacy_guard.tag_purposes(email)::text || ' ' || privacy_guard.tag_retain_until(email)
	  FROM customers WHERE id = 21}),
	'{billing,marketing} 2032-01-01 00:00:00+00', 'restored: plain values still take the default tag');

# a dump by a bound role fails loudly instead of writing withheld values
my $bad = $node->basedir . '/bad.dump';
$rc = IPC::Run::run([ 'pg_dump', '-Fc', '-f', $bad, '-t', 'notes', '-d', $node->connstr('src'), '-U', 'app' ],
	'>', \$stdout, '2>', \$stderr);
ok(!$rc, 'pg_dump of a table with withheld tagged values by a bound role fails');
like($stderr, qr/tagged value is withheld from this session/, '... saying a value is withheld');
unlike($stderr, qr/ZEBRA|long-long/, '... without the value');

$node->stop;
done_testing(14);
