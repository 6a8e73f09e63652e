-- examples/schema.sql -- the example shop's database, shared by every recipe
-- under examples/ and by the example shop (examples/shop).  Run as a
-- superuser in a database of its own:  psql -d shop -f examples/schema.sql
--
-- Purposes: billing (contract), marketing (consent) with a child
-- marketing.email, tax (legal obligation, for the invoices' legal hold).
-- Reading view: customers_read (tagged columns NULL where withheld).
-- Roles: shop_app, the application's login role: reads and writes the shop's
-- tables under billing and marketing, records consent and forget requests,
-- and may fetch a customer's subject report (the "what you hold about me"
-- download); nothing else.
\set ON_ERROR_STOP on
CREATE EXTENSION IF NOT EXISTS privacy_guard;

SELECT privacy_guard.define_purpose('billing', 'contract',
	'Invoices, payment and delivery of what you bought');
SELECT privacy_guard.define_purpose('marketing', 'consent',
	'Offers and news about our products');
SELECT privacy_guard.define_purpose('marketing.email', 'consent',
	'Our newsletter by e-mail');
-- the privacy notice in German (privacy_notice('html', 'de')) describes them so
SELECT privacy_guard.set_purpose_description('billing', 'de',
	'Rechnungen, Zahlung und Lieferung Ihrer Bestellungen');
SELECT privacy_guard.set_purpose_description('marketing', 'de',
	'Angebote und Neuigkeiten zu unseren Produkten');
SELECT privacy_guard.set_purpose_description('marketing.email', 'de',
	'Unser Newsletter per E-Mail');

DO $$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shop_app') THEN
		CREATE ROLE shop_app LOGIN;
	END IF;
END
$$;
SELECT privacy_guard.allow_purpose('shop_app', 'billing');
SELECT privacy_guard.allow_purpose('shop_app', 'marketing');
SELECT privacy_guard.grant_recorder('shop_app');
GRANT EXECUTE ON FUNCTION privacy_guard.subject_report(text) TO shop_app;

-- a customer: the subject key is the id; the e-mail address is a tagged
-- value with the table's default tag (billing and marketing, this
-- customer), the phone number is tagged for marketing only, so under
-- billing it is withheld
CREATE TABLE customers (
	id        bigint PRIMARY KEY,
	name      text NOT NULL,
	email     privacy_guard.tagged_text,
	phone     privacy_guard.tagged_text,
	signed_up timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE customers IS 'Customer accounts';
CREATE TABLE orders (
	id          bigserial PRIMARY KEY,
	customer_id bigint NOT NULL REFERENCES customers(id),
	item        text NOT NULL,
	price       numeric(10,2) NOT NULL,
	bought_at   timestamptz NOT NULL DEFAULT now(),
	warranty_until date NOT NULL
);
COMMENT ON TABLE orders IS 'What customers bought';
-- who asked for the newsletter (consent to marketing.email, or to marketing)
CREATE TABLE newsletter (
	customer_id   bigint PRIMARY KEY REFERENCES customers(id),
	subscribed_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE newsletter IS 'Newsletter subscriptions';
-- customer numbers of the example shop (the recipes pick their own below 10001)
CREATE SEQUENCE customer_numbers START 10001;
SELECT privacy_guard.protect('customers', 'id', ARRAY['billing', 'marketing']);
SELECT privacy_guard.protect('orders', 'customer_id', ARRAY['billing']);
SELECT privacy_guard.protect('newsletter', 'customer_id', ARRAY['marketing.email']);
GRANT SELECT, INSERT, UPDATE, DELETE ON customers, orders, newsletter TO shop_app;
GRANT USAGE ON SEQUENCE orders_id_seq, customer_numbers TO shop_app;
-- what applications read customers through: customers_read has the same
-- columns, the tagged ones as plain text, NULL where the purpose may not use
-- the value (security_invoker: the rules bind the reader as on the table);
-- SELECT on it goes to the roles that may read the table (shop_app)
SELECT privacy_guard.create_reading_view('customers');
