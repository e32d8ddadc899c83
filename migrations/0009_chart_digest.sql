ALTER TABLE "releases" ADD COLUMN "chart_digest" text;--> statement-breakpoint
ALTER TABLE "releases" ADD CONSTRAINT "releases_chart_digest_format" CHECK ("chart_digest" IS NULL OR "chart_digest" ~ '^sha256:[0-9a-f]{64}$');
