"""Web Push: the server's VAPID keys, the browsers' subscriptions, and the notifier that
pushes "needs you", "finished" and "failed" to the phones of users who are not looking."""
