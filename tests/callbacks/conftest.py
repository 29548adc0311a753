import glob
import os

import pytest


@pytest.fixture
def read_events():
    """`read(log_dir)` -> `(scalars, histograms)` from the TensorBoard event files in `log_dir`.

    `scalars`: `{tag: {step: value}}`; `histograms`: `{tag: {step: (k, 3) bucket array}}`,
    read back with TensorFlow's own event reader, as TensorBoard reads them.
    """
    tf = pytest.importorskip("tensorflow")

    def read(log_dir):
        scalars, histograms, plugins = {}, {}, {}
        files = sorted(glob.glob(os.path.join(log_dir, "events.out.tfevents.*")))
        assert files, f"no event file in {log_dir}"
        for path in files:
            for event in tf.compat.v1.train.summary_iterator(path):
                for value in event.summary.value:
                    # The plugin may be named only in a tag's first event.
                    plugin = value.metadata.plugin_data.plugin_name or plugins.get(value.tag)
                    plugins[value.tag] = plugin
                    array = tf.make_ndarray(value.tensor)
                    if plugin == "scalars":
                        scalars.setdefault(value.tag, {})[event.step] = float(array)
                    elif plugin == "histograms":
                        histograms.setdefault(value.tag, {})[event.step] = array
        return scalars, histograms

    return read
