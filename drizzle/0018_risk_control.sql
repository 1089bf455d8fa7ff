CREATE TABLE "risk_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"user_id" bigint NOT NULL,
	"rule" text NOT NULL,
	"action" text NOT NULL,
	"evidence" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"ip" text,
	"user_agent" text,
	"op_id" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "risk_rules" (
	"rule" text PRIMARY KEY NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"threshold" integer NOT NULL,
	"window_seconds" integer NOT NULL,
	"action" text NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "risk_status" text DEFAULT 'normal' NOT NULL;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "signup_ip" text;--> statement-breakpoint
CREATE INDEX "risk_events_time" ON "risk_events" USING btree ("created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "risk_events_user" ON "risk_events" USING btree ("user_id","created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "risk_events_rule" ON "risk_events" USING btree ("rule","created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE UNIQUE INDEX "risk_events_op" ON "risk_events" USING btree ("op_id") WHERE op_id IS NOT NULL;--> statement-breakpoint
CREATE INDEX "users_signup_ip" ON "users" USING btree ("signup_ip","created_at") WHERE signup_ip IS NOT NULL;--> statement-breakpoint
CREATE INDEX "users_risk" ON "users" USING btree ("risk_status") WHERE risk_status <> 'normal';--> statement-breakpoint
-- The risk rules' defaults (src/risk/rules.ts explains each): flag multi-accounting from one IP,
-- high-frequency actions, shared devices and transfer fan-in; freeze on a day's sudden gain; refuse
-- earn bursts with 429.
INSERT INTO "risk_rules" ("rule", "enabled", "threshold", "window_seconds", "action") VALUES
  ('IP_MULTI_ACCOUNT', true, 5, 86400, 'flag'),
  ('HIGH_FREQUENCY', true, 100, 3600, 'flag'),
  ('DEVICE_SHARING', true, 1, 0, 'flag'),
  ('DAILY_GAIN', true, 1000, 86400, 'freeze'),
  ('EARN_BURST', true, 10, 60, 'block'),
  ('TRANSFER_FAN_IN', true, 10, 3600, 'flag')
ON CONFLICT ("rule") DO NOTHING;
