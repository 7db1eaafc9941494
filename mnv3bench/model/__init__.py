"""From a `Variant` to a verified .tflite file, cached by content under models/.

- ops.py: the op inventory of a .tflite and the check that it keeps the variant's
  nonlinearity plan;
- convert.py: the Keras model to .tflite conversion and the numeric check against Keras;
- cache.py: the content-addressed cache (key, paths, sidecar, atomic writes, build lock);
- builds.py: `ensure_model` and `ensure_models`, the entry points (cache hit, or a build,
  several at once in worker processes).
"""
