CREATE TABLE "order_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"order_id" text NOT NULL,
	"from_status" text,
	"to_status" text NOT NULL,
	"actor_id" bigint,
	"reason" text,
	"data" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"notified" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "order_items" (
	"order_id" text NOT NULL,
	"position" integer NOT NULL,
	"goods_id" bigint NOT NULL,
	"goods_type" text NOT NULL,
	"quantity" integer NOT NULL,
	"unit_points" bigint DEFAULT 0 NOT NULL,
	"unit_cash" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "order_items_order_id_position_pk" PRIMARY KEY("order_id","position")
);
--> statement-breakpoint
CREATE TABLE "orders" (
	"id" text PRIMARY KEY NOT NULL,
	"order_no" text NOT NULL,
	"user_id" bigint NOT NULL,
	"source" text NOT NULL,
	"status" text NOT NULL,
	"points_total" bigint NOT NULL,
	"points_to_use" bigint DEFAULT 0 NOT NULL,
	"cash_total" bigint DEFAULT 0 NOT NULL,
	"cash_due" bigint DEFAULT 0 NOT NULL,
	"payment_id" text,
	"payment_deadline" timestamp with time zone,
	"key_hash" text,
	"token" text,
	"hold_id" text,
	"spend_op_id" text,
	"spent_lots" jsonb,
	"points_state" text DEFAULT 'none' NOT NULL,
	"stock_state" text DEFAULT 'reserved' NOT NULL,
	"rewards_state" text DEFAULT 'none' NOT NULL,
	"earn_state" text DEFAULT 'none' NOT NULL,
	"earned_points" bigint DEFAULT 0 NOT NULL,
	"receiver" text,
	"carrier" text,
	"tracking_no" text,
	"reason" text,
	"idem_key" text,
	"request_hash" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"paid_at" timestamp with time zone,
	"shipped_at" timestamp with time zone,
	"completed_at" timestamp with time zone,
	"cancelled_at" timestamp with time zone,
	"refunded_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "payment_events" (
	"event_id" text PRIMARY KEY NOT NULL,
	"payment_id" text NOT NULL,
	"status" text NOT NULL,
	"amount" bigint NOT NULL,
	"outcome" text NOT NULL,
	"received_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "point_holds" (
	"id" text PRIMARY KEY NOT NULL,
	"user_id" bigint NOT NULL,
	"amount" bigint NOT NULL,
	"lots" jsonb NOT NULL,
	"biz_type" text NOT NULL,
	"biz_id" text,
	"request_hash" text,
	"freeze_op" text,
	"state" text NOT NULL,
	"captured" bigint,
	"expires_at" timestamp with time zone,
	"settled_at" timestamp with time zone,
	"created_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "user_coupons" (
	"code" text PRIMARY KEY NOT NULL,
	"user_id" bigint NOT NULL,
	"order_id" text NOT NULL,
	"position" integer NOT NULL,
	"unit" integer NOT NULL,
	"goods_id" bigint NOT NULL,
	"status" text DEFAULT 'active' NOT NULL,
	"valid_until" timestamp with time zone NOT NULL,
	"used_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "vip_grants" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"user_id" bigint NOT NULL,
	"order_id" text NOT NULL,
	"position" integer NOT NULL,
	"unit" integer NOT NULL,
	"days" integer NOT NULL,
	"starts_at" timestamp with time zone NOT NULL,
	"ends_at" timestamp with time zone NOT NULL,
	"revoked" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "order_events_order" ON "order_events" USING btree ("order_id","id");--> statement-breakpoint
CREATE INDEX "order_events_unnotified" ON "order_events" USING btree ("id") WHERE NOT notified;--> statement-breakpoint
CREATE INDEX "order_items_goods" ON "order_items" USING btree ("goods_id");--> statement-breakpoint
CREATE UNIQUE INDEX "orders_order_no_key" ON "orders" USING btree ("order_no");--> statement-breakpoint
CREATE UNIQUE INDEX "orders_idem_key" ON "orders" USING btree ("user_id","idem_key");--> statement-breakpoint
CREATE UNIQUE INDEX "orders_payment_key" ON "orders" USING btree ("payment_id");--> statement-breakpoint
CREATE INDEX "orders_user_time" ON "orders" USING btree ("user_id","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "orders_status_time" ON "orders" USING btree ("status","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "orders_pump" ON "orders" USING btree ("updated_at") WHERE status IN ('placing', 'pending_payment') OR (status = 'shipped') OR points_state = 'frozen' OR stock_state = 'reserved'
          OR rewards_state = 'pending' OR earn_state = 'pending'
          OR (status IN ('cancelled', 'refunded') AND (stock_state <> 'returned' OR points_state IN ('captured', 'frozen') OR rewards_state = 'issued' OR earn_state = 'credited'));--> statement-breakpoint
CREATE INDEX "point_holds_open" ON "point_holds" USING btree ("user_id") WHERE state = 'frozen';--> statement-breakpoint
CREATE INDEX "point_holds_expiry" ON "point_holds" USING btree ("expires_at") WHERE state = 'frozen';--> statement-breakpoint
CREATE UNIQUE INDEX "user_coupons_unit_key" ON "user_coupons" USING btree ("order_id","position","unit");--> statement-breakpoint
CREATE INDEX "user_coupons_user" ON "user_coupons" USING btree ("user_id","created_at" DESC NULLS LAST);--> statement-breakpoint
CREATE UNIQUE INDEX "vip_grants_unit_key" ON "vip_grants" USING btree ("order_id","position","unit");--> statement-breakpoint
CREATE INDEX "vip_grants_user" ON "vip_grants" USING btree ("user_id","ends_at");--> statement-breakpoint
-- Purchases earn 1 point per 1.00 of cash paid (× tier and campaign), credited when an order
-- completes; trigger 'system': the order flow credits it, members cannot claim it.
INSERT INTO "earn_rules" ("action", "points", "expiry_days", "trigger") VALUES ('purchase', 1, 365, 'system') ON CONFLICT ("action") DO NOTHING;
