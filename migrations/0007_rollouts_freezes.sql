CREATE TABLE "channel_freezes" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"channel" text NOT NULL,
	"reason" text NOT NULL,
	"at" timestamp with time zone NOT NULL,
	"until" timestamp with time zone,
	"by" text NOT NULL,
	"ended_at" timestamp with time zone,
	"ended_by" text
);
--> statement-breakpoint
CREATE TABLE "rollouts" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"channel" text NOT NULL,
	"version" text NOT NULL,
	"steps" jsonb NOT NULL,
	"auto_pause" jsonb,
	"started_at" timestamp with time zone NOT NULL,
	"started_by" text NOT NULL,
	"state" text NOT NULL,
	"pauses" jsonb NOT NULL,
	"paused_reason" text,
	"paused_by" text,
	"ended_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "channel_releases" ADD COLUMN "rollback" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "channel_freezes" ADD CONSTRAINT "channel_freezes_channel_channels_name_fk" FOREIGN KEY ("channel") REFERENCES "public"."channels"("name") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rollouts" ADD CONSTRAINT "rollouts_channel_channels_name_fk" FOREIGN KEY ("channel") REFERENCES "public"."channels"("name") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "rollouts" ADD CONSTRAINT "rollouts_version_releases_version_fk" FOREIGN KEY ("version") REFERENCES "public"."releases"("version") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "channel_freezes_channel_idx" ON "channel_freezes" USING btree ("channel","id");--> statement-breakpoint
CREATE UNIQUE INDEX "rollouts_current_idx" ON "rollouts" USING btree ("channel","version") WHERE state <> 'ended';--> statement-breakpoint
CREATE INDEX "reports_channel_version_idx" ON "reports" USING btree ("channel","version","deployment_id","at");