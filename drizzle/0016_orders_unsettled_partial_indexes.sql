DROP INDEX "orders_updated";--> statement-breakpoint
DROP INDEX "orders_idem_key";--> statement-breakpoint
DROP INDEX "orders_payment_key";--> statement-breakpoint
ALTER TABLE "orders" ADD COLUMN "unsettled" boolean DEFAULT true NOT NULL;--> statement-breakpoint
CREATE INDEX "orders_unsettled" ON "orders" USING btree ("updated_at") WHERE unsettled;--> statement-breakpoint
CREATE UNIQUE INDEX "orders_idem_key" ON "orders" USING btree ("user_id","idem_key") WHERE idem_key IS NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "orders_payment_key" ON "orders" USING btree ("payment_id") WHERE payment_id IS NOT NULL;