# Settings shared by the rules.
import lqcdml

LQCDML_VERSION = lqcdml.__version__
THREADS = int(config.get("threads", 2))
