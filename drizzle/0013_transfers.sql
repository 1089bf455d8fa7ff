CREATE TABLE "transfers" (
	"id" text PRIMARY KEY NOT NULL,
	"from_user_id" bigint NOT NULL,
	"to_user_id" bigint NOT NULL,
	"amount" bigint NOT NULL,
	"note" text,
	"parts" jsonb NOT NULL,
	"day" integer NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"completed_at" timestamp with time zone,
	CONSTRAINT "transfers_not_to_self" CHECK ("transfers"."from_user_id" <> "transfers"."to_user_id")
);
--> statement-breakpoint
DROP INDEX "orders_pump";--> statement-breakpoint
CREATE INDEX "transfers_from_time" ON "transfers" USING btree ("from_user_id","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "transfers_to_time" ON "transfers" USING btree ("to_user_id","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "transfers_pending" ON "transfers" USING btree ("created_at") WHERE completed_at IS NULL;--> statement-breakpoint
CREATE INDEX "orders_updated" ON "orders" USING btree ("updated_at");