"""One way to describe a search dimension: a fixed value, a `(low, high)` range or a list of choices."""

try:
    import keras_tuner
except ImportError as error:  # pragma: no cover - depends on the environment
    raise ImportError(
        "keras_deepblocks.tuning needs keras-tuner: pip install 'keras-deepblocks[tuner]'"
    ) from error


def integer(hp, name, spec, step=1):
    """An `hp.Int` for `(low, high)` or `(low, high, step)`, `hp.Choice` for a list, `hp.Fixed` else."""
    if isinstance(spec, tuple):
        low, high, *rest = _range(spec, name, int)
        return hp.Int(name, low, high, step=rest[0] if rest else step)
    if isinstance(spec, list):
        return hp.Choice(name, _choices(spec, name, int))
    return hp.Fixed(name, _checked(spec, name, int))


def real(hp, name, spec, log=False):
    """An `hp.Float` for `(low, high)` (log-uniform if `log`), `hp.Choice` for a list, `hp.Fixed` else."""
    if isinstance(spec, tuple):
        low, high = _range(spec, name, (int, float))[:2]
        if log and low <= 0:
            raise ValueError(f"`{name}` range must be positive, got {spec!r}.")
        return hp.Float(name, float(low), float(high), sampling="log" if log else "linear")
    if isinstance(spec, list):
        return hp.Choice(name, [float(v) for v in _choices(spec, name, (int, float))])
    return hp.Fixed(name, float(_checked(spec, name, (int, float))))


def choice(hp, name, spec):
    """An `hp.Choice` for a list of strings, `hp.Fixed` for one."""
    if isinstance(spec, list):
        return hp.Choice(name, _choices(spec, name, str))
    return hp.Fixed(name, _checked(spec, name, str))


def _range(spec, name, types):
    if len(spec) not in (2, 3) or not all(_is(v, types) for v in spec) or spec[0] >= spec[1]:
        raise ValueError(
            f"`{name}` as a range must be (low, high) or (low, high, step) with low < high, "
            f"got {spec!r}."
        )
    return spec


def _choices(spec, name, types):
    if not spec or not all(_is(v, types) for v in spec):
        raise ValueError(f"`{name}` as choices must be a non-empty list of values, got {spec!r}.")
    return spec


def _checked(value, name, types):
    if not _is(value, types):
        raise TypeError(
            f"`{name}` must be a value, a (low, high) tuple or a list of choices, got {value!r}."
        )
    return value


def _is(value, types):
    return isinstance(value, types) and not isinstance(value, bool)
