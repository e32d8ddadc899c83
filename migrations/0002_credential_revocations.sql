CREATE TABLE "revocation_lifts" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"revocation_id" bigint NOT NULL,
	"reason" text NOT NULL,
	"actor" text NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "revocation_lifts_revocation_id_unique" UNIQUE("revocation_id")
);
--> statement-breakpoint
CREATE TABLE "token_revocations" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"jti" text NOT NULL,
	"reason" text NOT NULL,
	"actor" text NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "token_revocations_jti_unique" UNIQUE("jti")
);
--> statement-breakpoint
ALTER TABLE "revocation_lifts" ADD CONSTRAINT "revocation_lifts_revocation_id_revocations_id_fk" FOREIGN KEY ("revocation_id") REFERENCES "public"."revocations"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
-- Lifts and token revocations are history, like revocations: the database refuses to rewrite them
-- (chartcast_refuse_change comes from 0001_append_only_guards).
CREATE TRIGGER revocation_lifts_append_only BEFORE UPDATE OR DELETE ON revocation_lifts FOR EACH ROW EXECUTE FUNCTION chartcast_refuse_change();
--> statement-breakpoint
CREATE TRIGGER token_revocations_append_only BEFORE UPDATE OR DELETE ON token_revocations FOR EACH ROW EXECUTE FUNCTION chartcast_refuse_change();
