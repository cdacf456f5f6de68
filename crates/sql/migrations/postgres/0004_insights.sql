-- Insights: every message keeps the country decided when it was first recorded
-- (country_code NULL with region 'ZZ': no calling code). Rows written before this
-- migration are filled in, with the insight counters, by the store's format-2 upgrade
-- (smsreport_core::insights::v1), which runs right after the migrations.
ALTER TABLE messages ADD COLUMN country_code BIGINT, ADD COLUMN region TEXT;
