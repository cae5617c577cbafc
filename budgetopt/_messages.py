"""An exception on one line, the way every one-line error of budgetopt shows it, and
the ``pip install`` that fixes a missing module."""

from __future__ import annotations


def typed_line(error: BaseException) -> str:
    """``TYPE: message`` on one line (the type alone when there is no message)."""
    message = " ".join(str(error).split())
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def message_line(error: BaseException) -> str:
    """The message of ``error`` on one line (a KeyError's without its quotes; the type
    name when there is no message)."""
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return " ".join(str(text).split()) or type(error).__name__


# Python modules of budgetopt's optional features -> what ``pip install`` takes. The hint
# names the distribution, not ``budgetopt[extra]``: that fits a PyPI install and a source
# checkout alike (where ``pip install 'budgetopt[extra]'`` would fetch budgetopt itself).
_PACKAGES = {
    "optuna_dashboard": "optuna-dashboard", "plotly": "plotly", "matplotlib": "matplotlib", "scipy": "scipy",
    "torchvision": "torchvision", "timm": "timm", "sklearn": "scikit-learn", "psycopg": "'psycopg[binary]'",
    "psycopg2": "psycopg2-binary", "MySQLdb": "mysqlclient", "pymysql": "pymysql", "boto3": "boto3",
    "google": "google-cloud-storage", "lightning": "lightning",
}


def install_hint(module: str) -> str:
    """``pip install PACKAGE`` for the missing Python module ``module``."""
    top = module.split(".")[0]
    return f"pip install {_PACKAGES.get(top, top)}"
