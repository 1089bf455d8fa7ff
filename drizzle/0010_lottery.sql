CREATE TABLE "lotteries" (
	"id" serial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"cost" bigint NOT NULL,
	"cooldown_seconds" integer DEFAULT 0 NOT NULL,
	"daily_draw_limit" integer,
	"starts_at" timestamp with time zone,
	"ends_at" timestamp with time zone,
	"active" boolean DEFAULT true NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "lottery_draws" (
	"draw_id" text PRIMARY KEY NOT NULL,
	"lottery_id" integer NOT NULL,
	"user_id" bigint NOT NULL,
	"cost" bigint NOT NULL,
	"prize_id" integer NOT NULL,
	"prize_name" text NOT NULL,
	"prize_kind" text NOT NULL,
	"prize_points" bigint DEFAULT 0 NOT NULL,
	"prize_goods_id" bigint,
	"day" integer NOT NULL,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "lottery_prizes" (
	"id" serial PRIMARY KEY NOT NULL,
	"lottery_id" integer NOT NULL,
	"position" integer NOT NULL,
	"name" text NOT NULL,
	"kind" text NOT NULL,
	"points" bigint,
	"goods_id" bigint,
	"weight" integer NOT NULL,
	"stock" bigint,
	"retired" boolean DEFAULT false NOT NULL
);
--> statement-breakpoint
ALTER TABLE "redemptions" ADD COLUMN "source" text DEFAULT 'order' NOT NULL;--> statement-breakpoint
ALTER TABLE "lottery_prizes" ADD CONSTRAINT "lottery_prizes_lottery_id_lotteries_id_fk" FOREIGN KEY ("lottery_id") REFERENCES "public"."lotteries"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "lottery_prizes" ADD CONSTRAINT "lottery_prizes_goods_id_goods_id_fk" FOREIGN KEY ("goods_id") REFERENCES "public"."goods"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "lottery_draws_user_time" ON "lottery_draws" USING btree ("user_id","created_at" DESC NULLS LAST,"draw_id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "lottery_draws_lottery_prize" ON "lottery_draws" USING btree ("lottery_id","prize_id");--> statement-breakpoint
CREATE INDEX "lottery_draws_time" ON "lottery_draws" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "lottery_prizes_lottery" ON "lottery_prizes" USING btree ("lottery_id","position");--> statement-breakpoint
-- seed (copy over when migrations are regenerated): the documented example lottery, INACTIVE, so
-- nobody can draw until an operator has reviewed it and set "active": true. Cost 20, 30 s
-- cooldown; 100 pts (weight 1000), 50 (2000), 20 (3000), 10 (5000), nothing (10000):
-- expected 310000 / 21000 = 14.76 points paid per draw of 20 (a 73.8% payout).
WITH l AS (
  INSERT INTO "lotteries" ("name", "cost", "cooldown_seconds", "active")
  VALUES ('Lucky draw (example)', 20, 30, false)
  RETURNING "id"
)
INSERT INTO "lottery_prizes" ("lottery_id", "position", "name", "kind", "points", "weight")
SELECT l."id", p."position", p."name", p."kind", p."points", p."weight"
FROM l, (VALUES
  (0, '100 points', 'points', 100, 1000),
  (1, '50 points', 'points', 50, 2000),
  (2, '20 points', 'points', 20, 3000),
  (3, '10 points', 'points', 10, 5000),
  (4, 'Better luck next time', 'none', NULL, 10000)
) AS p("position", "name", "kind", "points", "weight");
