"""The O2-IMS infrastructure monitoring service: alarms, alarm subscriptions, notifications.

* :mod:`.catalog` -- the alarm dictionaries a backend publishes, as O2-IMS objects with
  stable ids (also the ids of alarm definitions, probable causes and records);
* :mod:`.engine` -- turns the backend's alarm signals into alarm event records and
  notifications (one replica at a time);
* :mod:`.service` -- reads and the PATCH (acknowledge, clear) of alarm records;
* :mod:`.configuration` -- the alarm service configuration (retention period);
* :mod:`.subscriptions` -- alarm subscriptions; :mod:`.notifier` renders and enqueues
  their notifications into the same durable outbox as the inventory's;
* :mod:`.filters` -- alarm subscription filters (notification types, or SOL013);
* :mod:`.dictionaries` -- alarm dictionaries and probable causes as the API serves them;
* :mod:`.retention` -- drops cleared alarms older than the retention period;
* :mod:`.scope` -- what a tenant may see of alarms (those of resources it may see);
* :mod:`.preconditions` -- ``ETag`` and ``If-Match`` (412) of the writable objects;
* :mod:`.wiring` -- builds all of it for the application's lifespan.
"""
