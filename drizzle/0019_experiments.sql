CREATE TABLE "experiment_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"user_id" bigint NOT NULL,
	"idem_key" text NOT NULL,
	"request_hash" text NOT NULL,
	"name" text NOT NULL,
	"experiment_key" text,
	"variant" text,
	"value" double precision,
	"counted" boolean DEFAULT false NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "experiment_exposures" (
	"experiment_key" text NOT NULL,
	"user_id" bigint NOT NULL,
	"variant" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "experiment_exposures_experiment_key_user_id_pk" PRIMARY KEY("experiment_key","user_id")
);
--> statement-breakpoint
CREATE TABLE "experiments" (
	"key" text PRIMARY KEY NOT NULL,
	"description" text DEFAULT '' NOT NULL,
	"variants" jsonb NOT NULL,
	"conversion_event" text NOT NULL,
	"status" text DEFAULT 'draft' NOT NULL,
	"starts_at" timestamp with time zone,
	"ends_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX "experiment_events_idem" ON "experiment_events" USING btree ("user_id","idem_key");--> statement-breakpoint
CREATE INDEX "experiment_events_counted" ON "experiment_events" USING btree ("experiment_key","variant") WHERE counted;--> statement-breakpoint
CREATE INDEX "experiment_exposures_variant" ON "experiment_exposures" USING btree ("experiment_key","variant");--> statement-breakpoint
-- The seed experiment (a draft: an operator starts it): which prompt text gets members to redeem.
INSERT INTO "experiments" ("key", "description", "variants", "conversion_event", "status") VALUES
  ('points_prompt', 'Which points prompt gets members to redeem',
   '[{"name": "control", "weight": 50, "payload": {"text": "You have {points} points — redeem them before they expire"}},
     {"name": "variant", "weight": 50, "payload": {"text": "Your {points} points can get you something today"}}]'::jsonb,
   'redeem', 'draft')
ON CONFLICT ("key") DO NOTHING;
