CREATE TABLE "audit_chain_head" (
	"id" integer PRIMARY KEY NOT NULL,
	"last_id" bigint NOT NULL,
	"last_hash" text NOT NULL,
	"last_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "audit_log" ADD COLUMN "prev_hash" text;--> statement-breakpoint
ALTER TABLE "audit_log" ADD COLUMN "hash" text;--> statement-breakpoint
ALTER TABLE "channels" ADD COLUMN "managed_by_file" text;--> statement-breakpoint
CREATE UNIQUE INDEX "audit_log_prev_hash_unique" ON "audit_log" USING btree ("prev_hash");
--> statement-breakpoint
-- The chain starts here: rows already in audit_log keep a null hash and are reported by
-- `chartcast audit verify` as written before the chain existed. Their content cannot be
-- hashed in SQL the way the application does (RFC 8785 canonical JSON of the row as read
-- back), so chaining them here would give hashes that the verifier cannot reproduce. The
-- first chained row links to the genesis value (64 zeros, GENESIS_HASH in
-- src/domain/audit-chain.ts) and takes the id after the last existing row.
INSERT INTO "audit_chain_head" ("id", "last_id", "last_hash", "last_at")
  SELECT 1, COALESCE(MAX("id"), 0), '0000000000000000000000000000000000000000000000000000000000000000', COALESCE(MAX("at"), to_timestamp(0)) FROM "audit_log";
--> statement-breakpoint
-- Row triggers do not fire on TRUNCATE, so the append-only tables also refuse it per
-- statement. Only a superuser disabling triggers (session_replication_role = replica) gets
-- past this, and the hash chain makes what such a user changed in audit_log visible.
CREATE TRIGGER releases_no_truncate BEFORE TRUNCATE ON releases FOR EACH STATEMENT EXECUTE FUNCTION chartcast_refuse_change();
--> statement-breakpoint
CREATE TRIGGER channel_events_no_truncate BEFORE TRUNCATE ON channel_events FOR EACH STATEMENT EXECUTE FUNCTION chartcast_refuse_change();
--> statement-breakpoint
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log FOR EACH STATEMENT EXECUTE FUNCTION chartcast_refuse_change();
--> statement-breakpoint
CREATE TRIGGER revocations_no_truncate BEFORE TRUNCATE ON revocations FOR EACH STATEMENT EXECUTE FUNCTION chartcast_refuse_change();
--> statement-breakpoint
CREATE TRIGGER revocation_lifts_no_truncate BEFORE TRUNCATE ON revocation_lifts FOR EACH STATEMENT EXECUTE FUNCTION chartcast_refuse_change();
--> statement-breakpoint
CREATE TRIGGER token_revocations_no_truncate BEFORE TRUNCATE ON token_revocations FOR EACH STATEMENT EXECUTE FUNCTION chartcast_refuse_change();
--> statement-breakpoint
-- The chain head is updated by every audit write but must never disappear: without it the
-- next write could not link to the chain.
CREATE TRIGGER audit_chain_head_kept BEFORE DELETE ON audit_chain_head FOR EACH ROW EXECUTE FUNCTION chartcast_refuse_change();
--> statement-breakpoint
CREATE TRIGGER audit_chain_head_no_truncate BEFORE TRUNCATE ON audit_chain_head FOR EACH STATEMENT EXECUTE FUNCTION chartcast_refuse_change();
