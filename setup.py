from setuptools import find_packages, setup

from ecommerce_bridge import __version__ as version

with open("requirements.txt") as f:
	install_requires = [line.strip() for line in f if line.strip() and not line.startswith("#")]

setup(
	name="ecommerce_bridge",
	version=version,
	description="Connects ERPNext to a custom e-commerce storefront: products, stock, orders and customers",
	author="ecommerce_bridge developers",
	author_email="dev@example.com",
	packages=find_packages(exclude=["tests", "tests.*", "benchmarks"]),
	zip_safe=False,
	include_package_data=True,
	install_requires=install_requires,
	python_requires=">=3.10",
)
