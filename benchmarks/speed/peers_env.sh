#!/usr/bin/env bash
# Create benchmarks/.cache/peers-venv with the peer libraries tf-keras-vis and xplique (CPU only),
# kept apart from the project's .venv because they need TensorFlow <= 2.20.
# Idempotent: a stamp holding this script's hash makes a re-run a no-op; editing the script
# rebuilds the venv from scratch.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/benchmarks/.cache/peers-venv"
STAMP="$VENV/.peers-stamp"
HASH="$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)"

if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(head -1 "$STAMP")" == "$HASH" ]]; then
  tail -n +2 "$STAMP"
  exit 0
fi

rm -rf "$VENV"
python3.11 -m venv "$VENV"
PIP=("$VENV/bin/pip" install -q --disable-pip-version-check)
# xplique 2.0.2 asks for tensorflow[and-cuda]<=2.20 on Linux (GBs of CUDA wheels): install its
# real runtime imports by hand and xplique itself with --no-deps. keras = the project's version,
# so both sides build and load the same Keras 3 models. tensorflow-probability (imported by
# `import xplique`) imports tf_keras under Keras 3; tf-keras goes in with --no-deps because it
# depends on the full `tensorflow` wheel, which would overwrite tensorflow-cpu's files.
"${PIP[@]}" "tensorflow-cpu==2.20.0" "keras==3.15.1" "tensorflow-probability==0.25.0" \
  "scikit-learn==1.7.2" "scipy==1.15.3" "scikit-image==0.25.2" \
  einops opencv-python-headless matplotlib deprecated "tf-keras-vis==0.8.7"
"${PIP[@]}" --no-deps "tf-keras==2.20.1" "xplique==2.0.2"

# smoke test: both peers import with tf.keras = Keras 3 (no TF_USE_LEGACY_KERAS needed)
LINE="$(TF_CPP_MIN_LOG_LEVEL=2 "$VENV/bin/python" - <<'EOF'
from importlib.metadata import version
import tensorflow as tf, keras
import xplique.features_visualizations, tf_keras_vis.activation_maximization
assert tf.keras.__version__.startswith("3."), tf.keras.__version__
print(f"peers-venv: tensorflow {tf.__version__} keras {keras.__version__} "
      f"tf-keras-vis {version('tf-keras-vis')} xplique {version('xplique')}")
EOF
)"
printf '%s\n%s\n' "$HASH" "$LINE" > "$STAMP"
echo "$LINE"
