CREATE TABLE "outbox_marks" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"partition" integer NOT NULL,
	"ms" bigint NOT NULL,
	"seq" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "reconcile_fence" (
	"id" integer PRIMARY KEY NOT NULL,
	"token" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "redis_epochs" (
	"epoch" bigint PRIMARY KEY NOT NULL,
	"run_id" text NOT NULL,
	"repl_id" text NOT NULL,
	"baseline" jsonb NOT NULL,
	"behind" boolean DEFAULT false NOT NULL,
	"reason" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX "outbox_marks_partition_id" ON "outbox_marks" USING btree ("partition","ms" DESC NULLS LAST,"seq" DESC NULLS LAST);