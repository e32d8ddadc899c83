CREATE TABLE "deployments" (
	"id" text PRIMARY KEY NOT NULL,
	"channel" text NOT NULL,
	"applied_version" text,
	"served_version" text,
	"last_seen_at" timestamp with time zone NOT NULL,
	"agent" text,
	"address" text,
	"last_report_version" text,
	"last_report_outcome" text,
	"last_report_detail" text,
	"last_report_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "reports" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"deployment_id" text NOT NULL,
	"channel" text NOT NULL,
	"version" text NOT NULL,
	"outcome" text NOT NULL,
	"detail" text,
	"digest" text,
	"at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE INDEX "deployments_last_seen_idx" ON "deployments" USING btree ("last_seen_at","id");--> statement-breakpoint
CREATE INDEX "deployments_channel_idx" ON "deployments" USING btree ("channel");--> statement-breakpoint
CREATE INDEX "reports_deployment_idx" ON "reports" USING btree ("deployment_id","at");--> statement-breakpoint
CREATE INDEX "reports_at_idx" ON "reports" USING btree ("at");--> statement-breakpoint
-- Reports are history and never rewritten. The one deletion is pruning after REPORT_RETENTION:
-- the pruning transaction declares its retention (SET LOCAL chartcast.report_retention) and may
-- delete only rows older than it, and never rows younger than one hour, so a stray DELETE (no
-- setting) is refused like any other change to an append-only table.
CREATE OR REPLACE FUNCTION chartcast_reports_guard() RETURNS trigger AS $$
DECLARE
  retention text := current_setting('chartcast.report_retention', true);
BEGIN
  IF TG_OP = 'DELETE' AND retention IS NOT NULL AND retention <> ''
     AND OLD.at < now() - greatest(retention::interval, interval '1 hour') THEN
    RETURN OLD;
  END IF;
  RAISE EXCEPTION 'table reports is append-only (only reports older than the retention may be pruned)' USING ERRCODE = 'restrict_violation';
END;
$$ LANGUAGE plpgsql;
--> statement-breakpoint
CREATE TRIGGER reports_append_only BEFORE UPDATE OR DELETE ON reports FOR EACH ROW EXECUTE FUNCTION chartcast_reports_guard();
--> statement-breakpoint
CREATE TRIGGER reports_no_truncate BEFORE TRUNCATE ON reports FOR EACH STATEMENT EXECUTE FUNCTION chartcast_refuse_change();
