"""Batch inference where the data already is: Ray Data and Spark, from one pure function.

- :mod:`~coe_template.engines.table`: a version as executors receive it (bytes + the registry's
  digests, verified before loading) and the pure function every engine calls on a batch;
- :mod:`~coe_template.engines.on_ray` / :mod:`~coe_template.engines.on_spark`: the engines' adapters;
- :mod:`~coe_template.engines.job`: the driver (resolve the version once, check the input, write the
  manifest); :mod:`~coe_template.engines.command`: ``coe-template batch-predict --engine ray|spark``.

Everything but the command needs an extra: ``pip install 'coe-template[ray]'`` or ``'coe-template[spark]'``.
"""
