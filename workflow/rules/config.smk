# The Snakemake configuration (conf/workflow.yaml, --configfile, --config key=value) against
# workflow/schemas/workflow.schema.yaml, as soon as it is loaded: a wrong key or value stops the
# parse, before lqcdml is imported, in one line with the key, the value and what is allowed.
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

CONFIG_SCHEMA = Path(workflow.basedir) / "workflow" / "schemas" / "workflow.schema.yaml"


def config_error(error, schema):
    """One line for a jsonschema ValidationError of the config."""
    keys = ", ".join(schema["properties"])
    if error.validator == "additionalProperties":
        unknown = ", ".join(repr(k) for k in error.instance if k not in schema["properties"])
        return f"config key {unknown} is unknown; allowed keys: {keys}"
    if not error.absolute_path:
        return f"config: {error.message}; allowed keys: {keys}"
    key = error.absolute_path[0]
    return f"config {key} = {config[key]!r}; allowed: {schema['properties'][key]['description']}"


try:
    validate(config, str(CONFIG_SCHEMA), set_default=False)
except WorkflowError as e:
    if not hasattr(e.__context__, "validator"):  # not a jsonschema ValidationError
        raise
    raise WorkflowError(config_error(e.__context__, yaml.safe_load(CONFIG_SCHEMA.read_text()))) from None
