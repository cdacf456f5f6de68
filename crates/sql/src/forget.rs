//! Forgetting a person on PostgreSQL and SQLite, written once (the statements are the
//! same in both dialects): see `Store::forget` for what changes. No table is indexed by
//! recipient, so each statement reads its table once; forgetting is rare.

/// Runs the forget statements on `$conn` (a `&mut` connection or transaction) for
/// `$number` and `$token`; evaluates to `Result<Forgotten, sqlx::Error>`. The caller owns
/// the transaction.
macro_rules! forget_in {
    ($conn:expr, $number:expr, $token:expr) => {{
        async {
            let (number, token): (&str, &str) = ($number, $token);
            let mut f = smsreport_core::forget::Forgotten::default();
            let lists: Vec<(String, i64)> = sqlx::query_as(
                "SELECT list_id, count(*) FROM contacts WHERE recipient = $1 GROUP BY list_id \
                 ORDER BY list_id",
            )
            .bind(number)
            .fetch_all(&mut *$conn)
            .await?;
            for (list, gone) in &lists {
                sqlx::query(
                    "INSERT INTO list_subscribers (list_id, subscribers) VALUES ($1, $2) \
                     ON CONFLICT (list_id) DO UPDATE \
                     SET subscribers = list_subscribers.subscribers + excluded.subscribers",
                )
                .bind(list)
                .bind(-gone)
                .execute(&mut *$conn)
                .await?;
            }
            f.contacts = sqlx::query("DELETE FROM contacts WHERE recipient = $1")
                .bind(number)
                .execute(&mut *$conn)
                .await?
                .rows_affected();
            f.messages = sqlx::query(
                "UPDATE messages SET recipient = $2 WHERE recipient = $1 AND campaign_id IS NOT NULL",
            )
            .bind(number)
            .bind(token)
            .execute(&mut *$conn)
            .await?
            .rows_affected();
            f.clicks = sqlx::query("UPDATE event_clicks SET recipient = $2 WHERE recipient = $1")
                .bind(number)
                .bind(token)
                .execute(&mut *$conn)
                .await?
                .rows_affected();
            sqlx::query(
                "INSERT INTO forgotten_clicks (campaign_id, link_id, at) \
                 SELECT campaign_id, link_id, at FROM clicks WHERE recipient = $1 \
                 ON CONFLICT DO NOTHING",
            )
            .bind(number)
            .execute(&mut *$conn)
            .await?;
            f.clicks += sqlx::query("UPDATE clicks SET recipient = $2 WHERE recipient = $1")
                .bind(number)
                .bind(token)
                .execute(&mut *$conn)
                .await?
                .rows_affected();
            for table in ["unique_pairs", "recipient_clicks"] {
                sqlx::query(&format!(
                    "UPDATE {table} SET recipient = $2 WHERE recipient = $1"
                ))
                .bind(number)
                .bind(token)
                .execute(&mut *$conn)
                .await?;
            }
            f.tracked_links =
                sqlx::query("UPDATE tracked_links SET recipient = $2 WHERE recipient = $1")
                    .bind(number)
                    .bind(token)
                    .execute(&mut *$conn)
                    .await?
                    .rows_affected();
            Ok::<_, sqlx::Error>(f)
        }
        .await
    }};
}
pub(crate) use forget_in;

/// The tables forgetting rewrites (PostgreSQL vacuums them afterwards).
pub(crate) const TOUCHED: &str =
    "contacts, list_subscribers, messages, event_clicks, clicks, forgotten_clicks, unique_pairs, recipient_clicks, tracked_links";
