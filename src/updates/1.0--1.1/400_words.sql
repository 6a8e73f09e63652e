/* Comments that named a section of an outside document now say what they mean */
COMMENT ON TYPE privacy_guard.tagged_text IS 'A text value carrying its own tag: purposes, optional subject, optional retain-until, which decide who may see it';
COMMENT ON FUNCTION privacy_guard.tagged_text_out(privacy_guard.tagged_text) IS 'Text output: the value and its tag, or error 42501 when its tag withholds the value from the session';
COMMENT ON FUNCTION privacy_guard.tagged_text_send(privacy_guard.tagged_text) IS 'Binary output: the value and its tag, or error 42501 when its tag withholds the value from the session';
COMMENT ON FUNCTION privacy_guard.reveal(privacy_guard.tagged_text) IS 'The value if its tag lets the session use it, else NULL; never an error about purposes';
COMMENT ON TYPE privacy_guard.tagged_date IS 'A date value carrying its own tag: purposes, optional subject, optional retain-until, which decide who may see it';
COMMENT ON FUNCTION privacy_guard.tagged_date_out(privacy_guard.tagged_date) IS 'Text output: the value and its tag, or error 42501 when its tag withholds the value from the session';
COMMENT ON FUNCTION privacy_guard.tagged_date_send(privacy_guard.tagged_date) IS 'Binary output: the value and its tag, or error 42501 when its tag withholds the value from the session';
COMMENT ON FUNCTION privacy_guard.reveal(privacy_guard.tagged_date) IS 'The value if its tag lets the session use it, else NULL; never an error about purposes';
COMMENT ON TYPE privacy_guard.tagged_numeric IS 'A numeric value carrying its own tag: purposes, optional subject, optional retain-until, which decide who may see it';
COMMENT ON FUNCTION privacy_guard.tagged_numeric_out(privacy_guard.tagged_numeric) IS 'Text output: the value and its tag, or error 42501 when its tag withholds the value from the session';
COMMENT ON FUNCTION privacy_guard.tagged_numeric_send(privacy_guard.tagged_numeric) IS 'Binary output: the value and its tag, or error 42501 when its tag withholds the value from the session';
COMMENT ON FUNCTION privacy_guard.reveal(privacy_guard.tagged_numeric) IS 'The value if its tag lets the session use it, else NULL; never an error about purposes';
COMMENT ON TYPE privacy_guard.tagged_jsonb IS 'A jsonb value carrying its own tag: purposes, optional subject, optional retain-until, which decide who may see it';
COMMENT ON FUNCTION privacy_guard.tagged_jsonb_out(privacy_guard.tagged_jsonb) IS 'Text output: the value and its tag, or error 42501 when its tag withholds the value from the session';
COMMENT ON FUNCTION privacy_guard.tagged_jsonb_send(privacy_guard.tagged_jsonb) IS 'Binary output: the value and its tag, or error 42501 when its tag withholds the value from the session';
COMMENT ON FUNCTION privacy_guard.reveal(privacy_guard.tagged_jsonb) IS 'The value if its tag lets the session use it, else NULL; never an error about purposes';
