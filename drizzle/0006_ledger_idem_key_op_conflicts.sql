CREATE TABLE "op_conflicts" (
	"op_id" text PRIMARY KEY NOT NULL,
	"incoming" jsonb NOT NULL,
	"existing" jsonb NOT NULL,
	"detected_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "ledger_entries" ADD COLUMN "idem_key" text;