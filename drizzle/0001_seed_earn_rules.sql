-- Default earn rules: sign-up bonus (applied once, at registration), share and review actions.
INSERT INTO "earn_rules" ("action", "points", "daily_cap_count", "daily_cap_points", "expiry_days", "trigger")
VALUES
  ('register', 100, 0, 0, 365, 'signup'),
  ('share', 10, 5, 50, 365, 'action'),
  ('review', 20, 3, 60, 365, 'action')
ON CONFLICT ("action") DO NOTHING;
