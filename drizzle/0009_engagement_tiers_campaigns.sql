CREATE TABLE "campaigns" (
	"id" serial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"biz_types" text[] NOT NULL,
	"multiplier_per_mille" integer NOT NULL,
	"starts_at" timestamp with time zone NOT NULL,
	"ends_at" timestamp with time zone NOT NULL,
	"notify" boolean DEFAULT false NOT NULL,
	"notified_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "engagement_settings" (
	"key" text PRIMARY KEY NOT NULL,
	"value" jsonb NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "tiers" (
	"position" integer PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"min_points" bigint NOT NULL,
	"earn_per_mille" integer NOT NULL,
	"price_per_mille" integer NOT NULL
);
--> statement-breakpoint
ALTER TABLE "point_accounts" ADD COLUMN "tier" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
CREATE INDEX "campaigns_window" ON "campaigns" USING btree ("ends_at","starts_at");--> statement-breakpoint
INSERT INTO "tiers" ("position", "name", "min_points", "earn_per_mille", "price_per_mille") VALUES
  (0, 'Regular', 0, 1000, 1000),
  (1, 'Silver', 1000, 1050, 950),
  (2, 'Gold', 5000, 1100, 900),
  (3, 'Diamond', 20000, 1200, 850)
ON CONFLICT ("position") DO NOTHING;
--> statement-breakpoint
INSERT INTO "engagement_settings" ("key", "value") VALUES
  ('checkin', '{"base":10,"streakBonuses":[{"days":7,"points":50},{"days":30,"points":200}],"expiryDays":365}'::jsonb),
  ('daily_login', '{"enabled":true,"points":10,"expiryDays":365}'::jsonb)
ON CONFLICT ("key") DO NOTHING;
--> statement-breakpoint
-- check-in has its own endpoint (POST /v1/me/checkins) instead of the earn action
DELETE FROM "earn_rules" WHERE "action" = 'checkin';
