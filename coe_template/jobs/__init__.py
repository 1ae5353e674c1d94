"""Leased jobs: the one queue (:mod:`.queue`), leases kept while work is done (:mod:`.leases`),
the runner loop (:mod:`.runner`), and the training jobs (:mod:`.training`), the queue's second client
after batch chunks (:mod:`coe_template.batch.jobs`)."""
