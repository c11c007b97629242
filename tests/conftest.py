import os
import pathlib
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
REPO = pathlib.Path(__file__).resolve().parent.parent
SHARED = REPO.parent / 'shared'
sys.path.insert(0, str(REPO))
