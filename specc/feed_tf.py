"""specc's array feed as a tf.data pipeline (the TensorFlow backend): the rows of each epoch
from `specc.feed.epoch_rows` (NumPy, a pure function of the epoch), gathered batch by batch in
parallel and prefetched, as Keras's own pipeline for arrays in memory does; a memory-mapped
array is read a batch at a time (`specc.feed.gather`), so its memory stays bounded."""
from __future__ import annotations

from typing import Any, Callable

from specc.feed_rows import gather

#: Epochs an endless training stream can run through (tf.data.Dataset.range's end).
_ENDLESS = 2**62


def tf_feed(x: dict[str, Any], y: dict[str, Any], rows_of: Callable[[int], Any], local: int,
            first_epoch: int | None, steps: int) -> Any:
    """A tf.data.Dataset of (inputs, targets) batches of `local` rows: epochs first_epoch,
    first_epoch + 1, ... one after the other (endless), or epoch 0 once (`first_epoch` None).
    Within an epoch, batch k holds rows_of(epoch)[k * local:(k + 1) * local]; one pass is
    `steps` batches (its cardinality, which Keras reads as its end)."""
    import numpy as np
    import tensorflow as tf

    batches = _epochs(rows_of, first_epoch, lambda rows: rows.batch(local))
    arrays = [*x.values(), *y.values()]
    if any(isinstance(a, np.memmap) for a in arrays):
        data = batches.map(_mapped_reader(x, y), num_parallel_calls=tf.data.AUTOTUNE)
    else:
        tx, ty = _tensors(x), _tensors(y)
        whole = (next(iter(tx.values())) if len(tx) == 1 else tx, ty)
        data = tf.data.Dataset.zip((batches, tf.data.Dataset.from_tensors(whole).repeat()))
        data = data.map(lambda take, d: tf.nest.map_structure(
            lambda a: tf.gather(a, take, axis=0), d), num_parallel_calls=tf.data.AUTOTUNE)
    return _finish(data, first_epoch, steps)


#: id(array) -> (a weak reference to it, its tensor): every feed over an in-memory array
#: (training, validation, measures) gathers from one tensor.
_TENSORS: dict[int, tuple[Any, Any]] = {}


def _tensors(arrays: dict[str, Any]) -> dict[str, Any]:
    """Each in-memory array as a tensor, made once: tf.data would copy a NumPy array into each
    dataset (measured: 2x its size per dataset; 2.2 GiB for four feeds of 256 MiB). The
    dict's entry becomes a NumPy view of the tensor (np.asarray of a CPU tensor does not
    copy), so that the data is held once."""
    import weakref

    import numpy as np
    import tensorflow as tf

    out = {}
    for name, a in arrays.items():
        got = _TENSORS.get(id(a))
        if got is None or got[0]() is not a:
            tensor = tf.convert_to_tensor(a)
            view = np.asarray(tensor)
            arrays[name] = view
            for known in (a, view):         # the same tensor for either, while it lives
                _TENSORS[id(known)] = got = (weakref.ref(known, _forget), tensor)
        out[name] = got[1]
    return out


def _forget(ref: Any) -> None:
    """An array is gone: its entry goes (unless its id is already another array's)."""
    for key, (known, _) in list(_TENSORS.items()):
        if known is ref:
            del _TENSORS[key]


def _epochs(rows_of: Callable[[int], Any], first_epoch: int | None,
            batches: Callable[[Any], Any]) -> Any:
    """Epoch first_epoch's batches, then the next epoch's, ... (endless), or epoch 0's once
    (`first_epoch` None): `batches` makes them of a dataset of the epoch's rows (so that no
    batch holds two epochs' rows)."""
    import numpy as np
    import tensorflow as tf

    if first_epoch is None:             # one pass: its rows known now (no per-pass function)
        return batches(tf.data.Dataset.from_tensor_slices(np.asarray(rows_of(0), np.int64)))

    def epoch(e: Any) -> Any:
        rows = tf.numpy_function(lambda e: np.asarray(rows_of(int(e)), dtype=np.int64),
                                 [e], tf.int64, stateful=False)
        rows.set_shape([None])
        return batches(tf.data.Dataset.from_tensor_slices(rows))

    return tf.data.Dataset.range(first_epoch, _ENDLESS).flat_map(epoch)


def _finish(data: Any, first_epoch: int | None, steps: int) -> Any:
    import tensorflow as tf

    if first_epoch is None:             # one pass: its length, which Keras reads as its end
        data = data.apply(tf.data.experimental.assert_cardinality(steps))
    options = tf.data.Options()
    # as Keras's array pipeline: no graph rewrites (their cost is per iterator), shards by data
    options.experimental_optimization.apply_default_optimizations = False
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.with_options(options).prefetch(tf.data.AUTOTUNE)


def folder_tf_feed(paths: list[str], labels: list[int], classes: int,
                   rows_of: Callable[[int], Any], local: int, first_epoch: int | None,
                   steps: int, *, image: tuple[int, ...] | None, text_axis: bool,
                   label_mode: str, output: str) -> Any:
    """The batches of a class folder's files as `tf_feed`'s: (inputs, {output: labels}).
    An image (`image` = (height, width, channels)) is decoded and resized (bilinear) as
    keras.utils.image_dataset_from_directory does; a text file is read whole as
    text_dataset_from_directory does (`text_axis`: as a (1,) string). Labels as Keras's
    `label_mode`: "int" (class ids), "categorical" (one-hot), "binary" (0/1 floats, (1,))."""
    import tensorflow as tf

    files = tf.constant(paths)
    ids = tf.constant(labels, dtype=tf.int32)

    def load(i: Any) -> Any:
        raw = tf.io.read_file(tf.gather(files, i))
        if image is not None:
            pixels = tf.image.decode_image(raw, channels=image[-1], expand_animations=False)
            x = tf.image.resize(pixels, image[:2], method="bilinear")
            x.set_shape(image)
        else:
            x = tf.expand_dims(raw, -1) if text_axis else raw
        label = tf.gather(ids, i)
        if label_mode == "categorical":
            label = tf.one_hot(label, classes)
        elif label_mode == "binary":
            label = tf.expand_dims(tf.cast(label, "float32"), -1)
        return x, {output: label}

    data = _epochs(rows_of, first_epoch, lambda rows: rows.map(
        load, num_parallel_calls=tf.data.AUTOTUNE).batch(local))
    return _finish(data, first_epoch, steps)


def _mapped_reader(x: dict[str, Any], y: dict[str, Any]) -> Callable[[Any], Any]:
    """A tf.data map function: a batch of row indices -> (inputs, targets), read from the
    arrays (memory-mapped ones among them) by NumPy."""
    import tensorflow as tf


    names = [*x, *y]
    arrays = [*x.values(), *y.values()]
    dtypes = [tf.as_dtype(a.dtype) for a in arrays]

    def read(take: Any) -> list[Any]:
        bx, by = gather(x, y, take)
        got = {**({next(iter(x)): bx} if len(x) == 1 else bx), **by}
        return [got[k] for k in names]

    def batch(take: Any) -> Any:
        out = tf.numpy_function(read, [take], dtypes, stateful=False)
        for t, a in zip(out, arrays):
            t.set_shape([None, *a.shape[1:]])
        got = dict(zip(names, out))
        inputs = got[names[0]] if len(x) == 1 else {k: got[k] for k in x}
        return inputs, {k: got[k] for k in y}

    return batch
