-- Releases are immutable and history is append-only. The application never updates or
-- deletes these rows; the database refuses it too, so no bug or hand-run SQL can rewrite
-- what a deployment was given or what the audit trail says.
CREATE OR REPLACE FUNCTION chartcast_refuse_change() RETURNS trigger AS $$
BEGIN
  RAISE EXCEPTION 'table % is append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE TRIGGER releases_immutable BEFORE UPDATE OR DELETE ON releases FOR EACH ROW EXECUTE FUNCTION chartcast_refuse_change();
--> statement-breakpoint
CREATE TRIGGER channel_events_append_only BEFORE UPDATE OR DELETE ON channel_events FOR EACH ROW EXECUTE FUNCTION chartcast_refuse_change();
--> statement-breakpoint
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION chartcast_refuse_change();
--> statement-breakpoint
CREATE TRIGGER revocations_append_only BEFORE UPDATE OR DELETE ON revocations FOR EACH ROW EXECUTE FUNCTION chartcast_refuse_change();
