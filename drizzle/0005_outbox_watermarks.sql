CREATE TABLE "outbox_watermarks" (
	"partition" integer PRIMARY KEY NOT NULL,
	"ms" bigint NOT NULL,
	"seq" bigint NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
