"""The EKS cluster's VPC: a public and a private subnet per zone, NAT per zone.

Children of the EksCluster component (their URNs carry its type), created only when the user
gives no ``network.subnetIds``. Not managed here: a network the user brings, whose routing and
NAT are theirs.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from components.eks.config import EksClusterConfig

__all__ = ["cluster_subnets"]


def cluster_subnets(
    name: str, config: EksClusterConfig, tags: dict[str, str], parent: pulumi.Resource
) -> Sequence[pulumi.Input[str]]:
    """The private subnets the control plane and the nodes use: the user's, or a new VPC's."""
    if config.network.subnet_ids:
        return list(config.network.subnet_ids)
    child = pulumi.ResourceOptions(parent=parent)
    region = config.region
    vpc = aws.ec2.Vpc(
        f"{name}-vpc",
        cidr_block=config.network.vpc_cidr,
        enable_dns_hostnames=True,
        enable_dns_support=True,
        region=region,
        tags={**tags, "Name": f"{config.name}-vpc"},
        opts=child,
    )
    igw = aws.ec2.InternetGateway(
        f"{name}-igw", vpc_id=vpc.id, region=region, tags=tags, opts=child
    )
    # Private subnets get the big halves: in ENI mode every pod takes one of their addresses.
    network = ipaddress.ip_network(config.network.vpc_cidr)
    private_ranges: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = list(
        network.subnets(prefixlen_diff=3)
    )
    public_ranges = list(private_ranges[-1].subnets(prefixlen_diff=3))
    public_rt = aws.ec2.RouteTable(
        f"{name}-public-rt",
        vpc_id=vpc.id,
        routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", gateway_id=igw.id)],
        region=region,
        tags=tags,
        opts=child,
    )
    private_ids: list[pulumi.Output[str]] = []
    for i, zone in enumerate(config.network.availability_zones):
        public = aws.ec2.Subnet(
            f"{name}-public-{zone}",
            vpc_id=vpc.id,
            cidr_block=str(public_ranges[i]),
            availability_zone=zone,
            map_public_ip_on_launch=False,
            region=region,
            tags={**tags, "kubernetes.io/role/elb": "1"},
            opts=child,
        )
        aws.ec2.RouteTableAssociation(
            f"{name}-public-{zone}",
            subnet_id=public.id,
            route_table_id=public_rt.id,
            region=region,
            opts=child,
        )
        eip = aws.ec2.Eip(f"{name}-nat-{zone}", domain="vpc", region=region, tags=tags, opts=child)
        nat = aws.ec2.NatGateway(
            f"{name}-nat-{zone}",
            subnet_id=public.id,
            allocation_id=eip.id,
            region=region,
            tags=tags,
            opts=child,
        )
        private = aws.ec2.Subnet(
            f"{name}-private-{zone}",
            vpc_id=vpc.id,
            cidr_block=str(private_ranges[i]),
            availability_zone=zone,
            region=region,
            tags={**tags, "kubernetes.io/role/internal-elb": "1"},
            opts=child,
        )
        private_rt = aws.ec2.RouteTable(
            f"{name}-private-rt-{zone}",
            vpc_id=vpc.id,
            routes=[aws.ec2.RouteTableRouteArgs(cidr_block="0.0.0.0/0", nat_gateway_id=nat.id)],
            region=region,
            tags=tags,
            opts=child,
        )
        aws.ec2.RouteTableAssociation(
            f"{name}-private-{zone}",
            subnet_id=private.id,
            route_table_id=private_rt.id,
            region=region,
            opts=child,
        )
        private_ids.append(private.id)
    return private_ids
