DROP INDEX "push_records_user_time";--> statement-breakpoint
DROP INDEX "push_records_status";--> statement-breakpoint
CREATE INDEX "push_records_undelivered" ON "push_records" USING btree ("status","created_at" DESC NULLS LAST,"id" DESC NULLS LAST) WHERE status <> 'sent';