"""Only the package list lives here (see pyproject.toml): datasets/ ships under the name chronoclip_datasets."""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["core*", "evaluation*"]) + ["chronoclip_datasets"])
