DROP INDEX "redemptions_op_id_key";--> statement-breakpoint
ALTER TABLE "redemptions" ADD CONSTRAINT "redemptions_op_id_is_id" CHECK ("redemptions"."op_id" = "redemptions"."id") NOT VALID;--> statement-breakpoint
ALTER TABLE "redemptions" VALIDATE CONSTRAINT "redemptions_op_id_is_id";
