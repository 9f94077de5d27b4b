-- A retried insert (same insert_deduplication_token: the shipper re-sending a spool segment whose
-- answer was lost) is dropped by the source table; the rollups must drop it too, or the day's
-- counts would hold it twice. A materialized view's insert into its target is deduplicated by a
-- token derived from the source insert's, which needs a window on the target table as well.
ALTER TABLE access_daily MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE events_daily MODIFY SETTING non_replicated_deduplication_window = 10000;
ALTER TABLE mail_daily MODIFY SETTING non_replicated_deduplication_window = 10000;
