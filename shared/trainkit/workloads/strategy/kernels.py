"""The indicators' inner loops, compiled by numba: one pass per indicator, as TA-Lib's C loops do.

Each kernel writes into arrays its caller allocated and follows TA-Lib's order of operations (EMA as
``prev + k * (x - prev)``, Wilder as ``(prev * (period - 1) + x) / period``, windows as running sums),
except that Wilder's division by the period is a multiplication by its reciprocal: a division on a
recurrence's dependency chain costs three times a multiplication there (RSI 4.7 -> 2.4 ms per million
candles), and RSI and ATR still agree with TA-Lib's to about 1e-14 relative
(``tests/data/indicators_talib.json``); every other output is computed exactly as TA-Lib does. Compiled
code is cached beside this file (``cache=True``): the first use on a machine compiles for a few seconds,
every later process loads it in milliseconds. ``nogil`` lets two trainings compute features at once.

Imported lazily by :mod:`indicators` (importing numba costs about half a second), so a process that
never computes an indicator never pays it.
"""

from __future__ import annotations

import math

from numba import njit

NAN = math.nan


@njit(cache=True, nogil=True)
def smooth_into(x, first, seed, k, out):  # type: ignore[no-untyped-def]
    """``out`` is NaN before ``first``, ``seed`` at it, then ``prev + k * (x[i] - prev)``."""
    n = x.shape[0]
    for i in range(min(first, n)):
        out[i] = NAN
    if first >= n:
        return
    prev = seed
    out[first] = prev
    for i in range(first + 1, n):
        prev = prev + k * (x[i] - prev)
        out[i] = prev


@njit(cache=True, nogil=True)
def ema_into(x, period, start, out):  # type: ignore[no-untyped-def]
    """EMA of ``x[start:]`` seeded with the mean of its first ``period`` values, ``k = 2 / (period + 1)``."""
    first = start + period - 1
    n = x.shape[0]
    if first >= n:
        for i in range(n):
            out[i] = NAN
        return
    total = 0.0
    for i in range(start, first + 1):
        total += x[i]
    smooth_into(x, first, total / period, 2.0 / (period + 1), out)


@njit(cache=True, nogil=True)
def sma_into(x, period, out):  # type: ignore[no-untyped-def]
    """Mean of the ``period`` values ending at each index (NaN before ``period - 1``): a running sum."""
    n = x.shape[0]
    for i in range(min(period - 1, n)):
        out[i] = NAN
    if period > n:
        return
    total = 0.0
    for i in range(period - 1):
        total += x[i]
    for i in range(period - 1, n):
        total += x[i]
        out[i] = total / period
        total -= x[i - period + 1]


@njit(cache=True, nogil=True)
def rsi_into(close, period, out):  # type: ignore[no-untyped-def]
    """Wilder's RSI: gains and losses averaged over changes 1..period, then smoothed; 0 when flat."""
    n = close.shape[0]
    for i in range(min(period, n)):
        out[i] = NAN
    if period >= n:
        return
    gain = 0.0
    loss = 0.0
    for i in range(1, period + 1):
        change = close[i] - close[i - 1]
        if change > 0.0:
            gain += change
        else:
            loss -= change
    gain /= period
    loss /= period
    total = gain + loss
    out[period] = 100.0 * gain / total if total != 0.0 else 0.0
    keep = float(period - 1)
    inverse = 1.0 / period
    for i in range(period + 1, n):
        change = close[i] - close[i - 1]
        up = change if change > 0.0 else 0.0
        down = -change if change < 0.0 else 0.0
        gain = (gain * keep + up) * inverse
        loss = (loss * keep + down) * inverse
        total = gain + loss
        out[i] = 100.0 * gain / total if total != 0.0 else 0.0


@njit(cache=True, nogil=True)
def atr_into(high, low, close, period, out, pct):  # type: ignore[no-untyped-def]
    """Wilder average of the true range (from the second candle), and that as % of close."""
    n = close.shape[0]
    for i in range(min(period, n)):
        out[i] = NAN
        pct[i] = NAN
    if period >= n:
        return
    total = 0.0
    for i in range(1, period + 1):
        total += max(high[i], close[i - 1]) - min(low[i], close[i - 1])
    prev = total / period
    out[period] = prev
    pct[period] = prev / close[period] * 100.0
    keep = float(period - 1)
    inverse = 1.0 / period
    for i in range(period + 1, n):
        true_range = max(high[i], close[i - 1]) - min(low[i], close[i - 1])
        prev = (prev * keep + true_range) * inverse
        out[i] = prev
        pct[i] = prev / close[i] * 100.0


@njit(cache=True, nogil=True)
def macd_into(close, fast, slow, signal, line, sig, histogram, histogram_pct):  # type: ignore[no-untyped-def]
    """TA-Lib's MACD: both EMAs seeded on the window ending at ``slow - 1``, the signal an EMA of the
    line from there; every output NaN before ``slow + signal - 2``. One pass: the three recurrences are
    independent chains, so running them in the same loop costs about one of them."""
    n = close.shape[0]
    first = slow + signal - 2  # the signal's first value: its seed averages line[slow - 1 .. first]
    for i in range(min(first, n)):
        line[i] = NAN
        sig[i] = NAN
        histogram[i] = NAN
        histogram_pct[i] = NAN
    if first >= n:
        return
    fast_total = 0.0
    for i in range(slow - fast, slow):
        fast_total += close[i]
    slow_total = 0.0
    for i in range(slow):
        slow_total += close[i]
    fast_k, slow_k, signal_k = 2.0 / (fast + 1), 2.0 / (slow + 1), 2.0 / (signal + 1)
    fast_ema = fast_total / fast
    slow_ema = slow_total / slow
    value = fast_ema - slow_ema
    total = value
    for i in range(slow, first + 1):
        x = close[i]
        fast_ema = fast_ema + fast_k * (x - fast_ema)
        slow_ema = slow_ema + slow_k * (x - slow_ema)
        value = fast_ema - slow_ema
        total += value
    smoothed = total / signal
    for i in range(first, n):
        if i > first:
            x = close[i]
            fast_ema = fast_ema + fast_k * (x - fast_ema)
            slow_ema = slow_ema + slow_k * (x - slow_ema)
            value = fast_ema - slow_ema
            smoothed = smoothed + signal_k * (value - smoothed)
        line[i] = value
        sig[i] = smoothed
        gap = value - smoothed
        histogram[i] = gap
        histogram_pct[i] = gap / close[i] * 100.0


@njit(cache=True, nogil=True)
def bbands_into(close, period, std_dev, percent_b, upper, middle, lower, width):  # type: ignore[no-untyped-def]
    """Bollinger bands with the population deviation, from running sums of the values (and squares)
    centred on the first close to limit cancellation; %B is 0.5 in a flat window."""
    n = close.shape[0]
    for i in range(min(period - 1, n)):
        percent_b[i] = NAN
        upper[i] = NAN
        middle[i] = NAN
        lower[i] = NAN
        width[i] = NAN
    if period > n:
        return
    ref = close[0]
    total = 0.0
    squares = 0.0
    for i in range(period - 1):
        value = close[i] - ref
        total += value
        squares += value * value
    for i in range(period - 1, n):
        value = close[i] - ref
        total += value
        squares += value * value
        mean = total / period
        variance = squares / period - mean * mean
        half_band = std_dev * math.sqrt(variance) if variance > 0.0 else 0.0
        centre = mean + ref
        middle[i] = centre
        upper[i] = centre + half_band
        lower[i] = centre - half_band
        percent_b[i] = 0.5 + (close[i] - centre) / (2.0 * half_band) if half_band > 0.0 else 0.5
        width[i] = 2.0 * half_band / centre
        old = close[i - period + 1] - ref
        total -= old
        squares -= old * old


@njit(cache=True, nogil=True)
def distance_into(close, value, out):  # type: ignore[no-untyped-def]
    """How far close is above ``value``, in % of ``value``."""
    for i in range(close.shape[0]):
        out[i] = (close[i] / value[i] - 1.0) * 100.0


@njit(cache=True, nogil=True)
def roc_into(close, period, out):  # type: ignore[no-untyped-def]
    """``(close / close[i - period] - 1) * 100``; 0 where that close is exactly 0, NaN before ``period``."""
    n = close.shape[0]
    for i in range(min(period, n)):
        out[i] = NAN
    for i in range(period, n):
        previous = close[i - period]
        out[i] = (close[i] / previous - 1.0) * 100.0 if previous != 0.0 else 0.0
