CREATE TABLE "commission_refunds" (
	"refund_op_id" text PRIMARY KEY NOT NULL,
	"source_op_id" text NOT NULL,
	"user_id" bigint NOT NULL,
	"points" bigint NOT NULL,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "engagement_payouts" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"slot" text NOT NULL,
	"user_id" bigint NOT NULL,
	"biz_type" text NOT NULL,
	"biz_id" text NOT NULL,
	"direction" text NOT NULL,
	"points" bigint NOT NULL,
	"rule" boolean DEFAULT false NOT NULL,
	"source_op_id" text,
	"level" integer,
	"base" bigint,
	"push" jsonb,
	"status" text DEFAULT 'pending' NOT NULL,
	"op_id" text,
	"settled" bigint,
	"attempts" integer DEFAULT 0 NOT NULL,
	"last_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"paid_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "engagement_watermarks" (
	"name" text PRIMARY KEY NOT NULL,
	"ledger_id" bigint DEFAULT 0 NOT NULL,
	"event_id" bigint DEFAULT 0 NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "member_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"user_id" bigint NOT NULL,
	"type" text NOT NULL,
	"ref" text,
	"dedupe" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "member_profiles" (
	"user_id" bigint PRIMARY KEY NOT NULL,
	"nickname" text,
	"avatar_url" text,
	"birthday" date,
	"gender" text,
	"completed_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "referral_codes" (
	"user_id" bigint PRIMARY KEY NOT NULL,
	"code" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "referrals" (
	"user_id" bigint PRIMARY KEY NOT NULL,
	"referrer_id" bigint NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "referrals_referrer_before_member" CHECK ("referrals"."referrer_id" < "referrals"."user_id")
);
--> statement-breakpoint
CREATE TABLE "task_progress" (
	"task_key" text NOT NULL,
	"user_id" bigint NOT NULL,
	"period_start" text NOT NULL,
	"progress" bigint DEFAULT 0 NOT NULL,
	"completed_at" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "task_progress_task_key_user_id_period_start_pk" PRIMARY KEY("task_key","user_id","period_start")
);
--> statement-breakpoint
CREATE TABLE "tasks" (
	"key" text PRIMARY KEY NOT NULL,
	"title" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"frequency" text NOT NULL,
	"event" text NOT NULL,
	"target" bigint NOT NULL,
	"reward" integer NOT NULL,
	"active" boolean DEFAULT true NOT NULL,
	"starts_at" timestamp with time zone,
	"ends_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "member_profiles" ADD CONSTRAINT "member_profiles_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "referral_codes" ADD CONSTRAINT "referral_codes_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "referrals" ADD CONSTRAINT "referrals_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "referrals" ADD CONSTRAINT "referrals_referrer_id_users_id_fk" FOREIGN KEY ("referrer_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "commission_refunds_source" ON "commission_refunds" USING btree ("source_op_id");--> statement-breakpoint
CREATE UNIQUE INDEX "engagement_payouts_slot_key" ON "engagement_payouts" USING btree ("slot");--> statement-breakpoint
CREATE INDEX "engagement_payouts_pending" ON "engagement_payouts" USING btree ("id") WHERE status = 'pending';--> statement-breakpoint
CREATE INDEX "engagement_payouts_source" ON "engagement_payouts" USING btree ("source_op_id","level");--> statement-breakpoint
CREATE INDEX "engagement_payouts_user" ON "engagement_payouts" USING btree ("user_id","biz_type");--> statement-breakpoint
CREATE UNIQUE INDEX "member_events_dedupe_key" ON "member_events" USING btree ("dedupe");--> statement-breakpoint
CREATE UNIQUE INDEX "referral_codes_code_key" ON "referral_codes" USING btree ("code");--> statement-breakpoint
CREATE INDEX "referrals_referrer" ON "referrals" USING btree ("referrer_id");--> statement-breakpoint
CREATE INDEX "task_progress_user" ON "task_progress" USING btree ("user_id","period_start");--> statement-breakpoint
-- ==== seed (issue 7: tasks, referrals) — copy this block over when the migration is regenerated ====
INSERT INTO "tasks" ("key", "title", "description", "frequency", "event", "target", "reward") VALUES
  ('daily_checkin', 'Daily check-in', 'Check in today', 'daily', 'checkin', 1, 10),
  ('daily_review_3', 'Review 3 goods', 'Write 3 reviews today', 'daily', 'review', 3, 15),
  ('daily_spend_100', 'Spend 100 points', 'Spend 100 points today', 'daily', 'spend_points', 100, 50),
  ('weekly_share_5', 'Share 5 times', 'Share 5 times this week', 'weekly', 'share', 5, 30),
  ('complete_profile', 'Complete your profile', 'Add a nickname, an avatar and your birthday', 'once', 'profile_complete', 1, 20)
ON CONFLICT ("key") DO NOTHING;
--> statement-breakpoint
-- the engagement role starts at what is already persisted: history from before it existed earns
-- no task rewards or commissions
INSERT INTO "engagement_watermarks" ("name", "ledger_id", "event_id")
SELECT 'engagement', COALESCE(max("id"), 0), 0 FROM "ledger_entries"
ON CONFLICT ("name") DO NOTHING;
