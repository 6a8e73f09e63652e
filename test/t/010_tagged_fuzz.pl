# Fuzzing the tagged types' input: thousands of random and mutated inputs to
# the text input functions (from SQL, deterministic PRNG) and to the binary
# input functions (COPY ... FROM (FORMAT binary) files built here, seeded
# PRNG).  Every input is either accepted, and then round-trips, or refused
# with SQLSTATE 22P02, 22023 or 54000; the server stays up throughout.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('tagged_fuzz');
$node->init(extra => ['--no-locale', '--encoding=UTF8']);
$node->start;

$node->safe_psql('postgres', q{
	CREATE EXTENSION privacy_guard;
	SELECT privacy_guard.define_purpose('billing', 'contract');
	SELECT privacy_guard.define_purpose('marketing', 'consent');
	CREATE TABLE fz_text (v privacy_guard.tagged_text);
	CREATE TABLE fz_date (v privacy_guard.tagged_date);
	CREATE TABLE fz_numeric (v privacy_guard.tagged_numeric);
	CREATE TABLE fz_jsonb (v privacy_guard.tagged_jsonb);
});
my $billing = $node->safe_psql('postgres', "SELECT id FROM privacy_guard.purpose WHERE name = 'billing'");

# ---------------------------------------------------------------- text input
my $text_fuzz = q{
CREATE TEMP TABLE outcome (typ text, state text);
DO $$
DECLARE
	seeds text[] := ARRAY[
		'tagged:{"value": "alice@example.org", "purposes": {"billing": BILLING}, "subject": "42", "retain_until": "2030-01-01 00:00:00+00"}',
		'tagged:{"value": "2001-02-03", "purposes": ["billing", "marketing"], "subject": "x"}',
		'tagged:{"value": "-12.5e3", "purposes": ["billing"], "retain_until": "infinity"}',
		'tagged:{"value": "{\"a\": [1, 2, {\"b\": null}]}", "purposes": {"billing": BILLING}}',
		'tagged:{"value": "v", "default": true}',
		'plain', '2001-02-03', '42.5', '{"k": "v"}', '[1,2,3]'];
	types text[] := ARRAY['text', 'date', 'numeric', 'jsonb'];
	alphabet text := '{}[]":,\\ tagged:valuepurposesubjectretain_untildefault0123456789-+.eE#ü€' || chr(1) || chr(127);
	s text;
	typ text;
	i int;
	k int;
	n int;
	pos int;
	v text;
	same boolean;
BEGIN
	PERFORM setseed(0.4711);
	FOR i IN 1 .. 4000 LOOP
		typ := types[1 + (i % 4)];
		IF i % 5 = 0 THEN
			/* random strings */
			s := '';
			n := floor(random() * 80)::int;
			FOR k IN 1 .. n LOOP
				s := s || substr(alphabet, 1 + floor(random() * length(alphabet))::int, 1);
			END LOOP;
			IF random() < 0.5 THEN s := 'tagged:' || s; END IF;
		ELSE
			/* mutations of valid inputs */
			s := replace(seeds[1 + floor(random() * array_length(seeds, 1))::int], 'BILLING', 'BILLINGID');
			FOR k IN 1 .. 1 + floor(random() * 4)::int LOOP
				pos := 1 + floor(random() * greatest(length(s), 1))::int;
				CASE floor(random() * 6)::int
					WHEN 0 THEN s := left(s, pos - 1);                                      -- truncate
					WHEN 1 THEN s := overlay(s PLACING substr(alphabet, 1 + floor(random() * length(alphabet))::int, 1) FROM pos FOR 1);
					WHEN 2 THEN s := left(s, pos) || substr(alphabet, 1 + floor(random() * length(alphabet))::int, 1) || substr(s, pos + 1);
					WHEN 3 THEN s := left(s, pos - 1) || substr(s, pos + 1);                -- delete
					WHEN 4 THEN s := left(s, pos) || repeat('9', 1 + floor(random() * 30)::int) || substr(s, pos + 1);
					ELSE s := left(s, pos) || repeat(substr(s, pos, 5), 1 + floor(random() * 300)::int) || substr(s, pos + 1);
				END CASE;
			END LOOP;
		END IF;
		BEGIN
			EXECUTE format('SELECT format(''%%s'', privacy_guard.tagged_%s_in($1::cstring))', typ) INTO v USING s;
			/* accepted: its text form reads back to the same text form */
			EXECUTE format('SELECT format(''%%s'', privacy_guard.tagged_%s_in($1::cstring)) = $1', typ) INTO STRICT same USING v;
			INSERT INTO outcome VALUES (typ, CASE WHEN same THEN 'ok' ELSE 'no round trip' END);
		EXCEPTION WHEN OTHERS THEN
			INSERT INTO outcome VALUES (typ, SQLSTATE);
		END;
	END LOOP;
END
$$;
SELECT state, count(*) FROM outcome GROUP BY state ORDER BY state;
};
$text_fuzz =~ s/BILLINGID/$billing/g;
my $out = $node->safe_psql('postgres', $text_fuzz);
note("text input outcomes:\n$out");
my %text = map { split /\|/ } split /\n/, $out;
my $total = 0;
$total += $_ for values %text;
is($total, 4000, 'text input: 4000 inputs tried');
is_deeply([ grep { !/^(ok|22P02|22023|54000)$/ } sort keys %text ], [],
	'text input: every input is accepted and round-trips, or refused with 22P02, 22023 or 54000');
ok(($text{ok} // 0) > 100 && ($text{'22P02'} // 0) > 100, 'text input: many accepted, many refused');

# ---------------------------------------------------------------- binary input
srand(4711);
sub purpose { my ($id, $name) = @_; return pack('N', $id) . pack('N', length $name) . $name; }
sub record
{
	my ($flags, $purposes, $retain, $subject, $value) = @_;
	my $b = pack('C', 1) . pack('C', $flags) . pack('n', scalar @$purposes) . join('', @$purposes);
	$b .= pack('q>', $retain) if $flags & 2;
	$b .= pack('N', length $subject) . $subject if $flags & 1;
	return $b . pack('N', length $value) . $value;
}
my @bill = (purpose($billing, 'billing'));
my %seed = (
	text => [ record(3, \@bill, 946684800000000, '42', 'alice@example.org'),
			  record(4, [], 0, '', 'plain text') ],
	date => [ record(1, \@bill, 0, 'x', pack('N', 366)), record(4, [], 0, '', pack('N', 0)) ],
	numeric => [ record(0, \@bill, 0, '', pack('n4 n2', 2, 0, 0, 1, 1, 5000)),
				 record(2, \@bill, 0, '', pack('n4', 0, 0, 0xC000, 0)) ],
	jsonb => [ record(1, \@bill, 0, 's', "\x01" . '{"a": [1, 2]}'), record(4, [], 0, '', "\x01" . '[]') ]);
my $dir = $node->basedir . '/fuzz';
mkdir $dir;
my $script = "\\set VERBOSITY sqlstate\n";
my $nfiles = 0;
for my $i (1 .. 2400)
{
	my @types = sort keys %seed;
	my $typ = $types[ $i % 4 ];
	my $b;
	if ($i % 6 == 0)
	{
		$b = join('', map { chr(int(rand(256))) } 1 .. int(rand(60)));
		substr($b, 0, 1) = "\x01" if length $b && rand() < 0.7;
	}
	else
	{
		$b = $seed{$typ}[ int(rand(2)) ];
		for (1 .. 1 + int(rand(3)))
		{
			my $pos = int(rand(length($b) || 1));
			my $m = int(rand(5));
			if ($m == 0) { $b = substr($b, 0, $pos); }
			elsif ($m == 1) { substr($b, $pos, 1) = chr(int(rand(256))) if $pos < length $b; }
			elsif ($m == 2) { substr($b, $pos, 0) = chr(int(rand(256))); }
			elsif ($m == 3 && $pos + 4 <= length $b)
			{
				substr($b, $pos, 4) = pack('N', (0, 0x7fffffff, 0xffffffff, 1025, 65)[ int(rand(5)) ]);
			}
			else { $b .= join('', map { chr(int(rand(256))) } 1 .. int(rand(8))); }
		}
	}
	my $copy = "PGCOPY\n\377\r\n\0" . pack('N', 0) . pack('N', 0)
	  . pack('n', 1) . pack('N', length $b) . $b . pack('n', 0xffff);
	my $file = "$dir/$i.bin";
	open(my $fh, '>:raw', $file) or die;
	print $fh $copy;
	close $fh;
	$script .= "\\copy fz_$typ FROM '$file' WITH (FORMAT binary)\n";
	$nfiles++;
}
my ($stdout, $stderr);
$node->psql('postgres', $script, stdout => \$stdout, stderr => \$stderr, on_error_stop => 0);
my %codes;
$codes{$1}++ while $stderr =~ /ERROR:\s+([0-9A-Z]{5})/g;
my $errors = 0;
$errors += $_ for values %codes;
note('binary input errors: ' . join(', ', map { "$_=$codes{$_}" } sort keys %codes));
my $loaded = $node->safe_psql('postgres',
	'SELECT (SELECT count(*) FROM fz_text) + (SELECT count(*) FROM fz_date) + '
	  . '(SELECT count(*) FROM fz_numeric) + (SELECT count(*) FROM fz_jsonb)');
is($loaded + $errors, $nfiles, "binary input: each of $nfiles inputs loaded or refused");
is_deeply([ grep { !/^(22P02|22023|54000)$/ } sort keys %codes ], [],
	'binary input: refused only with 22P02, 22023 or 54000');
ok($loaded > 50 && $errors > 1000, "binary input: $loaded accepted, $errors refused");
# what was accepted is well-formed: its text form reads back to the same text form
is($node->safe_psql('postgres', q{
	SELECT count(*) FILTER (WHERE r IS DISTINCT FROM s) || ' of ' || count(*) FROM (
		SELECT format('%s', v) s, format('%s', privacy_guard.tagged_text_in(format('%s', v)::cstring)) r FROM fz_text
		UNION ALL SELECT format('%s', v), format('%s', privacy_guard.tagged_date_in(format('%s', v)::cstring)) FROM fz_date
		UNION ALL SELECT format('%s', v), format('%s', privacy_guard.tagged_numeric_in(format('%s', v)::cstring)) FROM fz_numeric
		UNION ALL SELECT format('%s', v), format('%s', privacy_guard.tagged_jsonb_in(format('%s', v)::cstring)) FROM fz_jsonb) x}),
	"0 of $loaded", 'binary input: every accepted value prints and its text form reads back');

# ---------------------------------------------------------------- still up
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is still up');
my $log = slurp_file($node->logfile);
unlike($log, qr/terminated by signal|server process .* was terminated|PANIC/,
	'no backend crashed');

$node->stop;
done_testing(9);
