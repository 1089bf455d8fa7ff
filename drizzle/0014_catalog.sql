CREATE TABLE "categories" (
	"id" serial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"slug" text NOT NULL,
	"position" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "goods_campaigns" (
	"id" serial PRIMARY KEY NOT NULL,
	"name" text DEFAULT '' NOT NULL,
	"goods_ids" bigint[],
	"category_id" integer,
	"discount_per_mille" integer NOT NULL,
	"starts_at" timestamp with time zone NOT NULL,
	"ends_at" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "goods_campaigns_one_target" CHECK (("goods_campaigns"."goods_ids" IS NULL) <> ("goods_campaigns"."category_id" IS NULL)),
	CONSTRAINT "goods_campaigns_discount" CHECK ("goods_campaigns"."discount_per_mille" BETWEEN 1 AND 999)
);
--> statement-breakpoint
DROP INDEX "goods_category_id";--> statement-breakpoint
ALTER TABLE "goods" ADD COLUMN "category_id" integer;--> statement-breakpoint
ALTER TABLE "goods" ADD COLUMN "tags" text[] DEFAULT '{}'::text[] NOT NULL;--> statement-breakpoint
ALTER TABLE "goods" ADD COLUMN "image_url" text;--> statement-breakpoint
ALTER TABLE "goods" ADD COLUMN "cash_price" bigint;--> statement-breakpoint
ALTER TABLE "goods" ADD COLUMN "daily_limit" integer;--> statement-breakpoint
ALTER TABLE "goods" ADD COLUMN "dynamic_pricing" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "goods" ADD COLUMN "coupon_valid_days" integer;--> statement-breakpoint
ALTER TABLE "goods" ADD COLUMN "vip_days" integer;--> statement-breakpoint
ALTER TABLE "goods" ADD COLUMN "search_text" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "goods" ADD COLUMN "search" "tsvector" GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, search_text)) STORED;--> statement-breakpoint
ALTER TABLE "goods_campaigns" ADD CONSTRAINT "goods_campaigns_category_id_categories_id_fk" FOREIGN KEY ("category_id") REFERENCES "public"."categories"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "categories_slug_key" ON "categories" USING btree ("slug");--> statement-breakpoint
CREATE INDEX "categories_position" ON "categories" USING btree ("position","id");--> statement-breakpoint
CREATE INDEX "goods_campaigns_window" ON "goods_campaigns" USING btree ("ends_at","starts_at");--> statement-breakpoint
ALTER TABLE "goods" ADD CONSTRAINT "goods_category_id_categories_id_fk" FOREIGN KEY ("category_id") REFERENCES "public"."categories"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "goods_price_id" ON "goods" USING btree ("points_price","id");--> statement-breakpoint
CREATE INDEX "goods_search" ON "goods" USING gin ("search");--> statement-breakpoint
CREATE INDEX "goods_tags" ON "goods" USING gin ("tags");--> statement-breakpoint
CREATE INDEX "redemptions_goods_time" ON "redemptions" USING btree ("goods_id","created_at");--> statement-breakpoint
CREATE INDEX "goods_category_id" ON "goods" USING btree ("category_id","id");--> statement-breakpoint
ALTER TABLE "orders" DROP COLUMN "key_hash";--> statement-breakpoint
ALTER TABLE "orders" DROP COLUMN "token";--> statement-breakpoint
-- hand-written (copy over when migrations are regenerated): trigram matching for partial words
-- needs pg_trgm (a trusted extension: the database owner may create it), and drizzle-kit knows
-- neither the extension nor operator-class indexes on it. Goods that existed before search are
-- given their search text (lower-cased name and description; they have no tags yet).
CREATE EXTENSION IF NOT EXISTS pg_trgm;--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "goods_search_trgm" ON "goods" USING gin ("search_text" gin_trgm_ops);--> statement-breakpoint
UPDATE "goods" SET "search_text" = lower("name" || ' ' || "description") WHERE "search_text" = '';
