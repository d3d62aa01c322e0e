"""The one evaluation engine of chronoclip: what is evaluated, how, and the metrics.

* :mod:`core.eval.metrics`: every metric as a pure function (percent; one tie rule);
* :mod:`core.eval.engine`: :func:`~core.eval.engine.run_classifier` and
  :func:`~core.eval.engine.evaluate_set`, used by the trainer's validation (``summary.json``), every
  protocol of ``python -m evaluation``, ``compare`` and ``core.predict``;
* :mod:`core.eval.sets`: :class:`~core.eval.sets.EvalSet`, the one evaluation-set type;
* :mod:`core.eval.settings`: test settings (frames, views, sampler, aggregation, class text) and their
  precedence, including :func:`~core.eval.settings.resolve_num_frames`;
* :mod:`core.eval.sources`: where a model comes from (a run, an official checkpoint, zero-shot CLIP,
  a fresh build);
* :mod:`core.eval.texts`: class texts for a class list (names, descriptions, rephrased names).

The protocols, reports and CLIs live in the top-level package ``evaluation``; nothing here imports it.
"""
