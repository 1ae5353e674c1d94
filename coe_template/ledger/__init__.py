"""The prediction ledger: every prediction on record (what was answered, by which version, when).

The table is :mod:`.schema`; a prediction's id is made by :func:`.ids.new_prediction_id`,
time-ordered so that the ledger pages and expires by its primary key.
"""
