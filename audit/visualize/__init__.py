"""How a class visualization is made, apart from the loop that optimizes it (audit/visualize/optimize.py):

* `param`      an image parameterization: parameters -> pixels in [0, 1] (pixels, or a 1/f-scaled
               Fourier spectrum in decorrelated colour);
* `transforms` random jitter / scale / rotation applied to the rendered image every step;
* `penalties`  terms subtracted from the objective, with weights that mean the same at every resolution.

The loop takes these as plain values and knows none of their details.
"""
