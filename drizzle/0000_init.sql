CREATE TABLE "audit_log" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"op_id" text,
	"actor_id" bigint,
	"action" text NOT NULL,
	"target_type" text NOT NULL,
	"target_id" text NOT NULL,
	"data" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "earn_rules" (
	"id" serial PRIMARY KEY NOT NULL,
	"action" text NOT NULL,
	"points" integer NOT NULL,
	"daily_cap_count" integer DEFAULT 0 NOT NULL,
	"daily_cap_points" integer DEFAULT 0 NOT NULL,
	"expiry_days" integer DEFAULT 365 NOT NULL,
	"trigger" text DEFAULT 'action' NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	CONSTRAINT "earn_rules_action_unique" UNIQUE("action")
);
--> statement-breakpoint
CREATE TABLE "goods" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"category" text DEFAULT 'general' NOT NULL,
	"type" text NOT NULL,
	"points_price" bigint NOT NULL,
	"total_stock" bigint NOT NULL,
	"per_user_limit" integer,
	"starts_at" timestamp with time zone,
	"ends_at" timestamp with time zone,
	"active" boolean DEFAULT true NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "ledger_entries" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"op_id" text NOT NULL,
	"user_id" bigint NOT NULL,
	"delta" bigint NOT NULL,
	"balance_after" bigint NOT NULL,
	"kind" text NOT NULL,
	"biz_type" text NOT NULL,
	"biz_id" text,
	"created_at" timestamp with time zone NOT NULL,
	"persisted_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "point_accounts" (
	"user_id" bigint PRIMARY KEY NOT NULL,
	"available" bigint DEFAULT 0 NOT NULL,
	"total_earned" bigint DEFAULT 0 NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "point_lots" (
	"id" text PRIMARY KEY NOT NULL,
	"user_id" bigint NOT NULL,
	"amount" bigint NOT NULL,
	"remaining" bigint NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "redemptions" (
	"id" text PRIMARY KEY NOT NULL,
	"op_id" text NOT NULL,
	"exchange_no" text NOT NULL,
	"user_id" bigint NOT NULL,
	"goods_id" bigint NOT NULL,
	"quantity" integer NOT NULL,
	"points_spent" bigint NOT NULL,
	"status" text DEFAULT 'confirmed' NOT NULL,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "users" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"username" text NOT NULL,
	"email" text NOT NULL,
	"password_hash" text NOT NULL,
	"role" text DEFAULT 'member' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "point_accounts" ADD CONSTRAINT "point_accounts_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "audit_log_op_id_key" ON "audit_log" USING btree ("op_id");--> statement-breakpoint
CREATE INDEX "goods_category_id" ON "goods" USING btree ("category","id");--> statement-breakpoint
CREATE UNIQUE INDEX "ledger_entries_op_id_key" ON "ledger_entries" USING btree ("op_id");--> statement-breakpoint
CREATE INDEX "ledger_entries_user_time" ON "ledger_entries" USING btree ("user_id","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "point_lots_user_expiry" ON "point_lots" USING btree ("user_id","expires_at");--> statement-breakpoint
CREATE UNIQUE INDEX "redemptions_op_id_key" ON "redemptions" USING btree ("op_id");--> statement-breakpoint
CREATE UNIQUE INDEX "redemptions_exchange_no_key" ON "redemptions" USING btree ("exchange_no");--> statement-breakpoint
CREATE INDEX "redemptions_user_time" ON "redemptions" USING btree ("user_id","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "redemptions_goods" ON "redemptions" USING btree ("goods_id");--> statement-breakpoint
CREATE UNIQUE INDEX "users_email_key" ON "users" USING btree ("email");--> statement-breakpoint
CREATE UNIQUE INDEX "users_username_key" ON "users" USING btree ("username");