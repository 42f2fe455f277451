-- The console's "delivered in the last hour" and throughput read finished deliveries by time.
create index delivery_done_at on exchange.delivery (done_at) where status = 'done';
