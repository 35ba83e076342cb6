"""``python -m engine batch``: many edits, on one warm engine or on a Ray cluster (``docs/batch.md``).

One idea per module:
- ``job_params``: one manifest entry -> the ``edit`` job's params, with the command's defaults (the one place to
  switch to the typed parameters of ``engine/params``);
- ``manifest``: a JSON-lines manifest, or sample folders in the official layout, -> ``BatchJob``s grouped by photo;
- ``resume``: which jobs are already done (output, report and ``job_digest`` match) or failed last time;
- ``worker``: one warm engine running edit jobs in-process (the model cache keeps the models loaded);
- ``local_runner``: the jobs in turn on one worker;
- ``ray_runner``: the jobs on Ray actors, a photo's jobs on one actor, lost actors replaced and their jobs retried;
- ``progress``: per-job and overall progress with an ETA (logging) and the summary (``batch-summary.json``);
- ``run``: all of it together;
- ``frames``: an animation's frames as a batch, for Blender's Render Animation on a cluster.
Importing this package imports nothing heavy (no torch, no ray).
"""
