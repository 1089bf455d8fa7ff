CREATE TABLE "admin_idempotency_keys" (
	"actor_id" bigint NOT NULL,
	"idem_key" text NOT NULL,
	"request_hash" text NOT NULL,
	"status" integer NOT NULL,
	"body" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"settled" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "admin_idempotency_keys_actor_id_idem_key_pk" PRIMARY KEY("actor_id","idem_key")
);
