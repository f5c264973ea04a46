"""The numerical tolerances of the tests, each with its reason; tests use these names.

float32, the dtype of every model and map in camlab, carries 24 significant bits: the gap
between neighbouring float32 numbers (``np.spacing``) is 6e-8 just below 1, 1.2e-7 at 1,
3.8e-6 at 32 and 3.1e-5 at 300. Two float32 computations of the same number that add in a
different order (a compiled graph against NumPy or ``model.predict``, one batch against its
pieces, a nested model against a flat one) differ by a few of those gaps, more the more terms
they add. Each tolerance is a small multiple of the gap at the values compared, far below the
size of a real mistake (a wrong class, a forgotten ReLU, a map one pixel off), which still fails.
Comparisons with no tolerance (NumPy's default rtol=1e-7, or ``==``) are exact by construction:
the same float32 operations in the same order, or integers. ``np.allclose`` with its defaults
(rtol 1e-5) is kept for "not close" checks, and for maxima that the normalisation sets to 1.
Tolerances used once, for a reason of their own, carry that reason beside them.
"""

# Values of order 1 (probabilities, min-max-normalised maps, the raw maps of the small test models)
# from two float32 paths with few additions between them (the same operations in another graph or
# batch, or a hand computation over a few channels): 8 gaps at 1.0.
UNIT = 1e-6

# Values of order 1 where one side is computed by hand (NumPy, float64 or another order) through
# sums over the channels (at most 64 in the test models) and a min-max division: the relative
# error of a float32 sum of C terms is up to about C * 6e-8 = 4e-6; 1e-5 leaves a margin.
BY_HAND = 1e-5

# Raw (not normalised) maps and gradients, whose size depends on the model, compared relative to
# their size (rtol, or an atol scaled by the largest value): about 800 float32 epsilons (1.2e-7),
# for sums over channels and positions and for gradients TensorFlow accumulates in its own order.
RELATIVE = 1e-4

# The same, where both sides run the same float32 operations (one batch against its pieces, a
# nested model against a flat one) and only the order of additions differs: 80 epsilons.
RELATIVE_SAME = 1e-5

# Logits of the small test models (up to a few tens): 25 gaps at 32.
LOGITS = 1e-4

# Grey levels 0-255 stored as float32 in [0, 1] and scaled back: the rounding is at most
# 255 * 6e-8 = 1.5e-5 per pixel; 1e-3 is a thousandth of one grey level, so a level off still fails.
GREY_LEVEL = 1e-3
