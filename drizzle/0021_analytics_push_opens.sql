CREATE TABLE "analytics_days" (
	"day" date PRIMARY KEY NOT NULL,
	"active_members" integer NOT NULL,
	"monthly_active" integer NOT NULL,
	"new_members" integer NOT NULL,
	"earners" integer NOT NULL,
	"redeemers" integer NOT NULL,
	"points_issued" bigint NOT NULL,
	"points_spent" bigint NOT NULL,
	"points_expired" bigint NOT NULL,
	"points_refunded" bigint NOT NULL,
	"points_net" bigint NOT NULL,
	"points_outstanding" bigint NOT NULL,
	"redemptions" integer NOT NULL,
	"tasks_started" integer DEFAULT 0 NOT NULL,
	"tasks_completed" integer DEFAULT 0 NOT NULL,
	"pushes" integer DEFAULT 0 NOT NULL,
	"pushes_opened" integer DEFAULT 0 NOT NULL,
	"active_bits" bit varying NOT NULL,
	"new_bits" bit varying NOT NULL,
	"earner_bits" bit varying NOT NULL,
	"redeemer_bits" bit varying NOT NULL,
	"repeat_bits" bit varying NOT NULL,
	"ever_earned_bits" bit varying NOT NULL,
	"ever_redeemed_bits" bit varying NOT NULL,
	"computed_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "analytics_goods_days" (
	"day" date NOT NULL,
	"goods_id" bigint NOT NULL,
	"redemptions" integer NOT NULL,
	"quantity" bigint NOT NULL,
	"points" bigint NOT NULL,
	CONSTRAINT "analytics_goods_days_day_goods_id_pk" PRIMARY KEY("day","goods_id")
);
--> statement-breakpoint
CREATE TABLE "analytics_members" (
	"user_id" bigint PRIMARY KEY NOT NULL,
	"first_earn_day" date,
	"first_redeem_day" date
);
--> statement-breakpoint
CREATE TABLE "member_logins" (
	"day" date NOT NULL,
	"user_id" bigint NOT NULL,
	CONSTRAINT "member_logins_day_user_id_pk" PRIMARY KEY("day","user_id")
);
--> statement-breakpoint
ALTER TABLE "push_records" ADD COLUMN "push_id" bigint;--> statement-breakpoint
ALTER TABLE "push_records" ADD COLUMN "opened_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "analytics_members_first_redeem" ON "analytics_members" USING btree ("first_redeem_day") WHERE first_redeem_day IS NOT NULL;--> statement-breakpoint
CREATE INDEX "ledger_entries_created_brin" ON "ledger_entries" USING brin ("created_at");--> statement-breakpoint
CREATE INDEX "push_records_member_pushes" ON "push_records" USING btree ("user_id","created_at" DESC NULLS LAST,"id" DESC NULLS LAST) WHERE push_id IS NULL;--> statement-breakpoint
CREATE INDEX "push_records_push" ON "push_records" USING btree ("push_id") WHERE push_id IS NOT NULL;--> statement-breakpoint
CREATE INDEX "push_records_anchor_time" ON "push_records" USING btree ("created_at") WHERE push_id IS NULL;--> statement-breakpoint
CREATE INDEX "redemptions_created_brin" ON "redemptions" USING brin ("created_at");--> statement-breakpoint
CREATE INDEX "users_created_brin" ON "users" USING brin ("created_at");--> statement-breakpoint
-- Group the per-device records written before push_id existed: a deduped push's siblings carry
-- '<anchor key>:device:<id>'; the records of one push without a key were inserted in one
-- transaction (same created_at) with the same member and content, the anchor first.
UPDATE "push_records" r SET "push_id" = a."id"
FROM "push_records" a
WHERE r."dedupe_key" ~ ':device:[0-9]+$' AND a."dedupe_key" = regexp_replace(r."dedupe_key", ':device:[0-9]+$', '');--> statement-breakpoint
UPDATE "push_records" r SET "push_id" = g."anchor"
FROM (
  SELECT "id", min("id") OVER (PARTITION BY "user_id", "created_at", "type", "title", "body") AS "anchor"
  FROM "push_records" WHERE "dedupe_key" IS NULL
) g
WHERE r."id" = g."id" AND g."anchor" <> r."id";
