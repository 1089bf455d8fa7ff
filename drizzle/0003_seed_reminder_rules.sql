-- Reminder rules: points-expiry reminders 7, 3 and 1 day(s) ahead; the daily check-in reminder
-- is available but off until an operator enables it. A 'checkin' earn rule backs the check-in.
INSERT INTO "reminder_rules" ("kind", "enabled", "params")
VALUES
  ('expiry', true, '{"days":[7,3,1]}'::jsonb),
  ('checkin', false, '{"hourUtc":9}'::jsonb)
ON CONFLICT ("kind") DO NOTHING;
--> statement-breakpoint
INSERT INTO "earn_rules" ("action", "points", "daily_cap_count", "daily_cap_points", "expiry_days", "trigger")
VALUES ('checkin', 5, 1, 5, 365, 'action')
ON CONFLICT ("action") DO NOTHING;
